// End to end: what root inside a thin container leaves in its write layer (a setuid program: a package's sudo or
// passwd, or one it made on purpose) is stored on the host as it is, setuid root (privileged) or setuid HOSTID
// (unprivileged). No other local user may reach it by its path, as none may reach an LXC container's rootfs
// (lxc-create makes LXCPATH/NAME 0770): else any user runs the container's setuid programs on the host.
import { chmodSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerSuite, must, removeLxcContainer, sh, startContainer, temporaryRoot, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually } from '../helpers/locks.js';
import { CLI } from '../helpers/paths.js';

const { tests: reach, runnable, cleanup, base } = await containerSuite("a thin container's write layer and other local users", 'rbase');

if (runnable) {
  // Open as thin-lxc makes its default root (/containers): 0755, under /tmp, which every user can search.
  const root = temporaryRoot();
  chmodSync(root, 0o755);
  cleanup.add(() => sh('rm', ['-rf', root]));
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };

  /** Root inside copies the host's bash in as /rootbash, setuid (bash -p keeps the effective uid it was given). */
  const plantSetuidShell = async (name: string) => {
    const planted = await execa('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'cat > /rootbash && chmod 4755 /rootbash'], { inputFile: '/bin/bash', reject: false });
    assert.is(planted.exitCode, 0, String(planted.stderr));
  };

  /** Runs `program -p -c 'id -u'` as uid 65534, looking its path up from a shell that is uid 65534 throughout. */
  const runAsNobody = (program: string) => sh('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', '--', '/bin/sh', '-c', 'exec "$0" -p -c "id -u"', program]);

  for (const [kind, args, owner] of [
    ['privileged', [], 0],
    ['unprivileged', ['--unprivileged'], 100000],
  ] as const) {
    reach(`a setuid program root inside ${kind === 'privileged' ? 'a' : 'an'} ${kind} container made is not reachable by another local user (uid 65534) through the write layer`, async () => {
      const name = track(uniqueName(kind === 'privileged' ? 'rpriv' : 'runpr'));
      const created = await thinLxc(['create', name, '--base', base, '--root', root, ...args]);
      assert.is(created.exitCode, 0, created.stderr);
      assert.is((await startContainer(name)).exitCode, 0, 'the container starts (its root reaches its rootfs)');
      await plantSetuidShell(name);
      await must('lxc-stop', ['-n', name]);
      const program = join(root, name, 'wlayer/rootbash');
      const stat = lstatSync(program);
      assert.equal([stat.uid, (stat.mode & 0o7777).toString(8)], [owner, '4755'], `what is at stake: a program setuid ${owner} on the host`);
      const ran = await runAsNobody(program);
      assert.is.not(ran.exitCode, 0, `uid 65534 ran ${program} with effective uid ${ran.stdout.trim()}`);
      assert.match(ran.stderr, 'Permission denied');
      // Still usable by its owner: it starts again.
      assert.is((await startContainer(name)).exitCode, 0);
      await must('lxc-stop', ['-n', name, '-k']);
      assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
    });
  }

  // While create writes an unprivileged container's write layer (as root: the files, then their owner), whoever has
  // the map's ids on the host (a setuid-HOSTID program a bind mount let out, README's Isolation) must not reach it:
  // a symlink put there meanwhile would have root write and chown a host file. create is stopped (strace) at the
  // registration's mkdir, which comes after the write layer.
  const LXCPATH = '/var/lib/lxc';
  reach('the write layer an unprivileged create is still writing is not reachable by the map\'s ids on the host (uid and gid 100000)', async () => {
    const name = track(uniqueName('rstag'));
    const creating = execa('strace', ['-f', '-qq', '-P', `${LXCPATH}/${name}`, '-e', 'trace=mkdir', '-e', 'inject=mkdir:signal=SIGSTOP:when=1', process.execPath, CLI, 'create', name, '--base', base, '--root', root, '--unprivileged'], { reject: false, all: true, stdin: 'ignore' });
    cleanup.add(() => creating.kill('SIGKILL'));
    let said = '';
    creating.all!.on('data', (data: Buffer) => (said += data.toString()));
    const stopped = await eventually(() => said.includes('stopped by SIGSTOP'), 30_000);
    const staging = readdirSync(root).find((entry) => entry.startsWith(`.creating-${name}-`));
    const creator = staging === undefined ? undefined : Number(staging.slice(`.creating-${name}-`.length));
    assert.ok(stopped && creator, `create stopped at its registration, its staging directory there: ${said}`);
    cleanup.add(() => sh('kill', ['-CONT', String(creator)]));
    const wlayer = join(root, staging!, 'wlayer');
    assert.is(lstatSync(wlayer).uid, 100000, 'what is at stake: the write layer, the map root\'s, is there');
    const reached = await sh('setpriv', ['--reuid', '100000', '--regid', '100000', '--clear-groups', '--', 'ls', wlayer]);
    assert.is.not(reached.exitCode, 0, `uid and gid 100000 listed ${wlayer} while create wrote it: ${reached.stdout.trim()}`);
    process.kill(creator!, 'SIGCONT');
    const created = await creating;
    assert.is(created.exitCode, 0, created.all);
    // Once made, its directory is as an unprivileged container's is (LXC opens the rootfs as the map's root).
    assert.equal([lstatSync(join(root, name)).gid, (lstatSync(join(root, name)).mode & 0o7777).toString(8)], [100000, '710']);
    assert.is((await startContainer(name)).exitCode, 0, 'it starts');
    await must('lxc-stop', ['-n', name, '-k']);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });
}

reach.run();
