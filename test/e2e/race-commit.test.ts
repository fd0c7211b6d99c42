// Race review r2: a commit that takes a container's lock while the post-stop hooks of a stop from inside (its init
// killed, a poweroff, a crash) are still to run. LXC reports STOPPED and closes the command socket before those
// hooks, so commit sees a stopped container; the hooks, which find commit holding the lock, must still remove the
// forwarding that stop's start installed. Forced: a post-stop hook before ports-down held on a fifo, commit stopped
// (SIGSTOP) once it holds the lock.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerLockName, LOCK_DIR, lockHolder } from '../../src/core/lock.js';
import { containerSuite, must, removeLxcContainer, sh, startContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { holdBeforePortsDown } from '../helpers/held-hooks.js';
import { eventually } from '../helpers/locks.js';
import { rulesOf } from '../helpers/net.js';
import { CLI } from '../helpers/paths.js';
import { monitorOf } from '../helpers/processes.js';

const { tests: races, runnable, cleanup, base, root } = await containerSuite('commit and the post-stop hooks of a container that stopped by itself', 'rcbase');

if (runnable) {
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  let nextPort = 51_000 + Math.floor(Math.random() * 8_000);

  for (const kind of [[], ['--unprivileged']] as const) {
    const which = kind.length ? 'unprivileged' : 'privileged';
    races(`${which}: commit while the post-stop hooks of a container that stopped by itself run: its forwarding is still removed at that stop, and the commit completes`, async () => {
      const name = track(uniqueName('cskip'));
      const image = track(uniqueName('cimg'));
      const dir = join(root, name);
      const created = await thinLxc(['create', name, '--base', base, '--root', root, ...kind, '-p', `${nextPort++}:80`]);
      assert.is(created.exitCode, 0, created.stderr);
      const tag = tagOf(dir);
      // A post-stop hook before ports-down that waits on a fifo: LXC runs them in order, after it reported STOPPED.
      const hold = await holdBeforePortsDown(dir, cleanup);
      assert.is((await startContainer(name)).exitCode, 0);
      assert.ok(await eventually(async () => (await rulesOf(tag)).some((line) => line.includes('DNAT')), 20_000), 'its forwarding is installed');
      assert.ok(existsSync(join(LOCK_DIR, 'forwarding', tag)), 'its forwarding is recorded');
      assert.ok(monitorOf(name), 'its monitor runs');
      // It stops by itself (its init dies: a crash, a poweroff): LXC says STOPPED, then runs the post-stop hooks.
      process.kill(Number((await must('lxc-info', ['-p', '-H', '-n', name])).trim()), 'SIGKILL');
      assert.ok(await eventually(() => hold.reached(), 30_000), "the stop's post-stop hooks are held before ports-down");
      const commit = execa(process.execPath, [CLI, 'commit', name, image, '--root', root], { reject: false, timeout: 120_000 });
      // Commit holds the container's lock (stopped there, so that it still holds it when ports-down starts).
      const committing = () => lockHolder(containerLockName(dir))?.purpose.startsWith('commit') === true;
      let finished = false;
      void commit.finally(() => (finished = true));
      await eventually(() => committing() || finished, 30_000);
      const stopped = committing();
      if (stopped) process.kill(commit.pid!, 'SIGSTOP');
      try {
        assert.ok(stopped, `commit holds ${name}'s lock while its post-stop hooks are held (commit: ${finished ? 'ended' : 'running'})`);
        await hold.release();
        assert.ok(await eventually(() => monitorOf(name) === undefined, 60_000), "the stop's post-stop hooks ran and its monitor exited");
      } finally {
        if (stopped) process.kill(commit.pid!, 'SIGCONT');
      }
      const committed = await commit;
      console.log(`${which} commit:`, committed.exitCode, String(committed.stderr || committed.stdout).split('\n')[0]);
      assert.is((await sh('lxc-info', ['-s', '-H', '-n', name])).stdout.trim(), 'STOPPED');
      assert.equal(await rulesOf(tag), [], `${name} stopped, and its forwarding rules are left in the firewall (its ports-down hook skipped its work because commit held the lock)`);
      assert.not.ok(existsSync(join(LOCK_DIR, 'forwarding', tag)), `${name} stopped, and its forwarding is still recorded`);
      assert.is(committed.exitCode, 0, committed.stderr);
      assert.ok(existsSync(join('/var/lib/lxc', image, 'config')), 'the new base is made');
      assert.is((await sh('lxc-info', ['-s', '-H', '-n', image])).stdout.trim(), 'STOPPED', 'the new base is an LXC container');
    });
  }
}

races.run();
