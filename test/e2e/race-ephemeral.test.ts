// Race review: an ephemeral container that stops by itself and is started again at once (a supervisor's restart)
// while its previous boot's post-stop hooks still run. LXC reports STOPPED and closes the old monitor's command
// socket before those hooks, so lxc-start starts a new monitor; the old boot's ephemeral hook must then not tear
// down the directory of the new, running start. The hooks are held at the container's lock (flock in a child).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerLockName } from '../../src/core/lock.js';
import { containerSuite, removeLxcContainer, sh, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually, holdLock, waitingFor } from '../helpers/locks.js';

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

races.run();
