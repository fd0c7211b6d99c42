// End to end for create --replace: the whole new spec is checked before the old container is touched, so a
// refused replace leaves the old one exactly as it was (running, with the files of its write layer).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { attach, containerSuite, must, removeLxcContainer, startContainer, temporaryRoot, thinLxc, uniqueName, sh } from '../helpers/host.js';

const { tests: replace, runnable, cleanup, base, root } = await containerSuite('create --replace with real LXC', 'rbase');

if (runnable) {
  let nextPort = 49_500 + Math.floor(Math.random() * 5_000);
  const port = () => nextPort++;
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  const lxcState = async (name: string) => (await must('lxc-info', ['-n', name, '-s', '-H'])).trim();
  const keptFile = (name: string) => join(root, name, 'wlayer', 'root', 'keep.txt');

  /** A running thin container with a file it wrote itself, in its write layer. */
  const runningWithData = async (label: string) => {
    const name = track(uniqueName(label));
    const made = await thinLxc(['create', name, '--base', base, '--root', root]);
    assert.is(made.exitCode, 0, made.stderr);
    assert.is((await startContainer(name)).exitCode, 0);
    await attach(name, 'mkdir -p /root && echo precious > /root/keep.txt');
    assert.is(readFileSync(keptFile(name), 'utf8'), 'precious\n');
    return name;
  };
  const untouched = async (name: string, why: string) => {
    assert.is(await lxcState(name), 'RUNNING', `${why}: the old container still runs`);
    assert.ok(existsSync(keptFile(name)), `${why}: its write layer still holds its file`);
    assert.is(readFileSync(keptFile(name), 'utf8'), 'precious\n');
  };

  replace('a replace whose new port a host process listens on is refused, and the old container runs on with its data', async () => {
    const name = await runningWithData('busy');
    const hostPort = port();
    const listener = execa('socat', [`TCP4-LISTEN:${hostPort},bind=127.0.0.1,reuseaddr,fork`, 'SYSTEM:echo host'], { reject: false });
    cleanup.add(() => listener.kill('SIGKILL'));
    // Bounded wait until the listener is there, so the refusal is about it.
    for (let tries = 0; tries < 50 && !(await sh('ss', ['-Htln', `sport = :${hostPort}`])).stdout.includes(String(hostPort)); tries++) {
      await new Promise((done) => setTimeout(done, 100));
    }
    const refused = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${hostPort}:80`, '--replace']);
    listener.kill('SIGKILL');
    assert.is(refused.exitCode, 2, refused.stderr);
    assert.is(refused.stderr.trim().split('\n').length, 1, 'one line');
    assert.match(refused.stderr, new RegExp(`^thin-lxc: host port ${hostPort}/tcp \\(of ${hostPort}:80/tcp\\) is in use by .*listening on 127\\.0\\.0\\.1:${hostPort}: publishing it would take it away`));
    await untouched(name, 'port refused');
  });

  replace('a replace whose template is missing, renders a broken config, or whose base is missing is refused before anything is destroyed', async () => {
    const name = await runningWithData('tmpl');
    const dir = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', dir]));
    const broken = join(dir, 'broken.hbs');
    writeFileSync(broken, 'lxc.uts.name = {{name}}\n');
    const cases: [string[], RegExp][] = [
      [['--template', join(dir, 'missing.hbs')], /^thin-lxc: .*missing\.hbs/],
      [['--template', broken], /^thin-lxc: .*lxc\.rootfs\.path/],
    ];
    for (const [extra, message] of cases) {
      const refused = await thinLxc(['create', name, '--base', base, '--root', root, ...extra, '--replace']);
      assert.is(refused.exitCode, 2, `${extra.join(' ')}: ${refused.stderr}`);
      assert.match(refused.stderr.trim(), message);
      await untouched(name, extra.join(' '));
    }
    const noBase = await thinLxc(['create', name, '--base', uniqueName('nobase'), '--root', root, '--replace']);
    assert.is(noBase.exitCode, 2, noBase.stderr);
    assert.match(noBase.stderr, /is not an LXC container/);
    await untouched(name, 'missing base');
  });

  replace('--dry-run --replace says it would stop, destroy and create, with what; a real replace then does it', async () => {
    const name = await runningWithData('real');
    const hostPort = port();
    const args = ['create', name, '--base', base, '--root', root, '-p', `${hostPort}:80`, '--replace'];
    const check = await thinLxc([...args, '--dry-run']);
    assert.is(check.exitCode, 0, check.stderr);
    assert.match(check.stdout, new RegExp(`^# thin-lxc create --dry-run --replace: nothing was written\\. Would stop thin container ${name} \\(running\\), destroy it \\(id ${name}, ${join(root, name)}\\), and create it anew:`));
    assert.match(check.stdout, `DNAT`);
    await untouched(name, 'dry run');

    const done = await thinLxc(args);
    assert.is(done.exitCode, 0, done.stderr);
    assert.match(done.stdout, `Replaced thin container ${name}`);
    assert.is(await lxcState(name), 'STOPPED', 'the old one was stopped, the new one not started');
    assert.not.ok(existsSync(keptFile(name)), 'the new container has a new write layer');
    assert.match(readFileSync(join(root, name, 'thin-lxc.ini'), 'utf8'), `${hostPort}:80/tcp`);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });
}

replace.run();
