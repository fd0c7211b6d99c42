// Race review: an ephemeral container that stops by itself and is started again at once (a supervisor's restart)
// while its previous boot's post-stop hooks still run. LXC reports STOPPED and closes the old monitor's command
// socket before those hooks, so lxc-start starts a new monitor; the old boot's ephemeral hook must then not tear
// down the directory of the new, running start. The hooks are held at the container's lock (flock in a child).
// And one whose stop's post-stop hooks still run while create --replace (or destroy, then create) makes a new
// container in its directory: that old stop's ephemeral hook must not remove the new one. Held with a fifo.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerLockName } from '../../src/core/lock.js';
import { STARTED_DIR } from '../../src/state/paths.js';
import { readState } from '../../src/state/state.js';
import { containerSuite, must, removeLxcContainer, sh, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually, holdLock, waitingFor } from '../helpers/locks.js';
import { monitorOf } from '../helpers/processes.js';

const { tests: races, runnable, cleanup, base, root } = await containerSuite('an ephemeral container restarted while its last boot\'s post-stop hooks run', 'rebase');

/** thin-lxc hook processes (node …/hooks/thin-lxc-HOOK.js DIR) of the container at `dir`, and their children. */
function hookProcesses(dir: string): number[] {
  const all = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).flatMap((entry) => {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      return [{ pid: Number(entry), ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]), argv: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0') }];
    } catch {
      return [];
    }
  });
  const hooks = all.filter((proc) => proc.argv.some((arg) => /thin-lxc-[a-z-]+\.js$/.test(arg)) && proc.argv.includes(dir)).map((proc) => proc.pid);
  return [...hooks, ...all.filter((proc) => hooks.includes(proc.ppid)).map((proc) => proc.pid)];
}

if (runnable) {
  for (const kind of [[], ['--unprivileged']] as const) {
    races(`${kind.length ? 'unprivileged' : 'privileged'}: a start right after an ephemeral container powered off keeps its directory while it runs`, async () => {
      const name = uniqueName('eph');
      cleanup.add(() => removeLxcContainer(name));
      const dir = join(root, name);
      const created = await thinLxc(['create', name, '--base', base, '--root', root, '--ephemeral', ...kind]);
      assert.is(created.exitCode, 0, created.stderr);
      assert.is((await startContainer(name)).exitCode, 0);
      const lock = await holdLock(containerLockName(dir));
      let start;
      let old: number[] = [];
      try {
        // The attached shell may be ended by the shutdown itself (143).
        assert.ok([0, 143].includes((await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'kill -USR2 1'])).exitCode), 'poweroff from inside');
        assert.ok(await eventually(() => waitingFor(containerLockName(dir)).length > 0, 30_000), 'the old boot\'s post-stop hook waits for the lock');
        // The old boot's hooks are stopped where they wait, so the new start's hook gets the lock first.
        old = hookProcesses(dir);
        for (const pid of old) process.kill(pid, 'SIGSTOP');
        cleanup.add(() => old.forEach((pid) => { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } }));
        start = execa('lxc-start', ['-n', name, '-d'], { reject: false, timeout: 60_000 });
        assert.ok(await eventually(() => waitingFor(containerLockName(dir)).length > 1, 30_000), 'the new start\'s mount hook waits for the lock too');
      } finally {
        await lock.release();
      }
      const started = await start!;
      for (const pid of old) process.kill(pid, 'SIGCONT');
      // The old boot's post-stop hooks (ports-down, then ephemeral) run to their end.
      assert.ok(await eventually(() => hookProcesses(dir).length === 0, 30_000), 'the old boot\'s hooks are done');
      const running = (await sh('lxc-info', ['-s', '-H', '-n', name])).stdout.trim();
      console.log(kind.join(' ') || 'privileged', 'start:', started.exitCode, 'state:', running, 'dir kept:', existsSync(dir), 'lxc config kept:', existsSync(`/var/lib/lxc/${name}/config`));
      const wrote = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'echo x > /root/x && cat /root/x']);
      assert.is(started.exitCode, 0, started.stderr);
      assert.ok(existsSync(dir), `${name} was started again (lxc-start exit 0), and its previous boot's ephemeral hook removed its directory (write layer, state)`);
      assert.is(running, 'RUNNING');
      assert.is(wrote.stdout.trim(), 'x', `writing inside: ${wrote.stderr}`);
      await sh('lxc-stop', ['-n', name, '-k']);
    });
  }
}

if (runnable) {
  for (const kind of [[], ['--unprivileged']] as const) {
    races(`${kind.length ? 'unprivileged' : 'privileged'}: create --replace while a stopped ephemeral container's post-stop hooks still run keeps the new container; its own stop removes it`, async () => {
      const name = uniqueName('rep');
      cleanup.add(() => removeLxcContainer(name));
      const dir = join(root, name);
      const created = await thinLxc(['create', name, '--base', base, '--root', root, '--ephemeral', ...kind]);
      assert.is(created.exitCode, 0, created.stderr);
      // A post-stop hook before the ephemeral one that waits on a fifo: LXC runs them in order, so it holds the
      // ephemeral hook back after LXC has reported STOPPED (and closed the command socket).
      const held = mkdtempSync('/tmp/thin-lxc-held-');
      cleanup.add(() => rmSync(held, { recursive: true, force: true }));
      await must('mkfifo', [join(held, 'go')]);
      const release = () => sh('timeout', ['10', 'sh', '-c', `echo go > ${join(held, 'go')}`]);
      const config = join(dir, 'image', 'config');
      const lines = readFileSync(config, 'utf8').split('\n');
      const ephemeralLine = lines.findIndex((line) => /^lxc\.hook\.post-stop = .*thin-lxc-ephemeral\.js /.test(line));
      assert.ok(ephemeralLine > 0, 'the config has the ephemeral hook');
      lines.splice(ephemeralLine, 0, `lxc.hook.post-stop = /bin/sh -c "touch ${held}/reached; timeout 120 cat ${held}/go >/dev/null"`);
      writeFileSync(config, lines.join('\n'));
      assert.is((await startContainer(name)).exitCode, 0);
      const monitor = monitorOf(name);
      assert.ok(monitor, 'its monitor runs');
      const oldCreated = readState(dir).created;
      let replaced;
      const stop = sh('lxc-stop', ['-n', name, '-k']);
      try {
        assert.ok(await eventually(() => existsSync(join(held, 'reached')), 30_000), 'the stop\'s post-stop hooks are held before the ephemeral hook');
        // Another spec (a memory limit): the old container is stopped, so it is destroyed and a new one made in its directory.
        replaced = await thinLxc(['create', name, '--base', base, '--root', root, '--ephemeral', '--memory', '256M', '--replace', ...kind]);
        assert.is(replaced.exitCode, 0, replaced.stderr);
        assert.ok(existsSync(dir), 'the new container is there once create returned');
        assert.is.not(readState(dir).created, oldCreated, 'a new container');
        assert.is(monitorOf(name), monitor, 'the old stop\'s monitor is still held in its post-stop hooks');
      } finally {
        await release();
      }
      await stop;
      // The old stop's hooks (ports-down, the fifo, ephemeral) run to their end, and its monitor exits.
      assert.ok(await eventually(() => !existsSync(`/proc/${monitor}`) && hookProcesses(dir).length === 0, 60_000), 'the old stop is done');
      assert.ok(existsSync(dir), `create --replace said: ${replaced.stdout.split('\n')[0]}; then the old stop's ephemeral hook removed the new container's directory`);
      assert.is(readState(dir).memory, String(256 * 1024 * 1024), 'it is the new container');
      assert.ok(existsSync(join('/var/lib/lxc', name, 'config')), 'and it is registered');
      assert.not.ok(existsSync(join(root, STARTED_DIR, name)), 'it has not started yet');
      // The new container is ephemeral as asked: its own start and stop remove it.
      assert.is((await startContainer(name)).exitCode, 0);
      assert.ok(existsSync(join(root, STARTED_DIR, name)), 'its start marks it started');
      await must('lxc-stop', ['-n', name, '-k']);
      assert.ok(await eventually(() => !existsSync(dir) && !existsSync(join('/var/lib/lxc', name)), 30_000), 'its own stop removes it');
    });
  }
}

races.run();
