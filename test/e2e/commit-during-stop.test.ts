// From the race review r4: ports-down runs without the container's lock while a commit holds it (2830990). Its
// stop's commit lets go, and the container is started again before ports-down removes anything: the new start's
// forwarding must stay (the removal checks the record's generation under the 'iptables' lock). Forced: a post-stop
// hook before ports-down held on a fifo, commit stopped (SIGSTOP) holding the lock, the 'iptables' lock held by a
// flock child until both ports-down and the new start's ports-up wait for it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerLockName, LOCK_DIR, lockHolder } from '../../src/core/lock.js';
import { containerSuite, must, removeLxcContainer, sh, startContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { holdBeforePortsDown } from '../helpers/held-hooks.js';
import { eventually, holdLock, waitingFor } from '../helpers/locks.js';
import { rulesOf } from '../helpers/net.js';
import { CLI } from '../helpers/paths.js';
import { monitorOf } from '../helpers/processes.js';

const { tests: races, runnable, cleanup, base, root } = await containerSuite('ports-down without the lock during a commit, then a start', 'r4pbase');

if (runnable) {
  races('a start right after the commit while the old stop\'s unlocked ports-down still waits: the new start keeps its forwarding', async () => {
    const name = uniqueName('r4pd');
    const image = uniqueName('r4pimg');
    cleanup.add(() => removeLxcContainer(name));
    cleanup.add(() => removeLxcContainer(image));
    const dir = join(root, name);
    const port = 51_000 + Math.floor(Math.random() * 8_000);
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${port}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const tag = tagOf(dir);
    const hold = await holdBeforePortsDown(dir, cleanup);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.ok(await eventually(async () => (await rulesOf(tag)).some((line) => line.includes('DNAT')), 20_000), 'its forwarding is installed');
    const oldMonitor = monitorOf(name);
    process.kill(Number((await must('lxc-info', ['-p', '-H', '-n', name])).trim()), 'SIGKILL');
    assert.ok(await eventually(() => hold.reached(), 30_000), "the stop's post-stop hooks are held before ports-down");
    // The next start has no held hook.
    hold.unhold();
    const commit = execa(process.execPath, [CLI, 'commit', name, image, '--root', root], { reject: false, timeout: 120_000 });
    const committing = () => lockHolder(containerLockName(dir))?.purpose.startsWith('commit') === true;
    let finished = false;
    void commit.finally(() => (finished = true));
    await eventually(() => committing() || finished, 30_000);
    const stopped = committing();
    if (stopped) process.kill(commit.pid!, 'SIGSTOP');
    const iptables = await holdLock('iptables');
    cleanup.add(() => iptables.release());
    let start;
    try {
      assert.ok(stopped, 'commit holds the lock while the post-stop hooks are held');
      const before = waitingFor('iptables').length;
      await hold.release();
      // ports-down finds commit holding the lock, goes on without it, and waits for 'iptables'.
      assert.ok(await eventually(() => waitingFor('iptables').length > before, 20_000), 'ports-down waits for the iptables lock');
      process.kill(commit.pid!, 'SIGCONT');
      const committed = await commit;
      assert.is(committed.exitCode, 0, String(committed.stderr));
      start = execa('lxc-start', ['-n', name, '-d'], { reject: false, timeout: 90_000 });
      // The new start's ports-up waits for 'iptables' too (or the start is done: LXC refused it while the old monitor runs).
      let startDone = false;
      void start.finally(() => (startDone = true));
      await eventually(() => waitingFor('iptables').length > before + 1 || startDone, 15_000);
      console.log('waiting for iptables:', waitingFor('iptables').length - before, 'start done:', startDone);
    } finally {
      if (stopped) try { process.kill(commit.pid!, 'SIGCONT'); } catch { /* gone */ }
      await iptables.release();
    }
    const started = await start!;
    assert.ok(await eventually(() => oldMonitor === undefined || monitorOf(name) !== oldMonitor, 60_000), 'the old stop\'s hooks are done');
    await eventually(async () => false, 3_000);
    const state = (await sh('lxc-info', ['-s', '-H', '-n', name])).stdout.trim();
    console.log('start:', started.exitCode, String(started.stderr).trim(), 'state:', state, 'hook.log:', existsSync(join(dir, 'hook.log')) ? readFileSync(join(dir, 'hook.log'), 'utf8').trim() : 'none');
    assert.is(started.exitCode, 0, `the new start: ${started.stderr}`);
    assert.is(state, 'RUNNING');
    assert.ok((await rulesOf(tag)).some((line) => line.includes('DNAT')), 'the new start\'s forwarding is in the firewall');
    assert.ok(existsSync(join(LOCK_DIR, 'forwarding', tag)), 'and recorded');
    await must('lxc-stop', ['-n', name]);
  });
}

if (runnable) {
  races('a thin-lxc command during an ephemeral container\'s post-stop hooks (held before ports-down) removes it whole: no rule, directory or registration left', async () => {
    const name = uniqueName('r4eph');
    cleanup.add(() => removeLxcContainer(name));
    const dir = join(root, name);
    const port = 51_000 + Math.floor(Math.random() * 8_000);
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--ephemeral', '-p', `${port}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const tag = tagOf(dir);
    const hold = await holdBeforePortsDown(dir, cleanup);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.ok(await eventually(async () => (await rulesOf(tag)).some((line) => line.includes('DNAT')), 20_000), 'its forwarding is installed');
    process.kill(Number((await must('lxc-info', ['-p', '-H', '-n', name])).trim()), 'SIGKILL');
    assert.ok(await eventually(() => hold.reached(), 30_000), "the stop's post-stop hooks are held before ports-down");
    // Any command sweeps crashed ephemeral containers first: LXC already says STOPPED and its socket is closed.
    const listed = await thinLxc(['list', '--root', root]);
    const goneDuringHooks = !existsSync(dir);
    await hold.release();
    assert.ok(await eventually(() => monitorOf(name) === undefined, 60_000), "the stop's post-stop hooks ran and its monitor exited");
    console.log('list during the hooks:', listed.exitCode, 'removed then:', goneDuringHooks);
    assert.is(listed.exitCode, 0, listed.stderr);
    assert.equal(await rulesOf(tag), [], 'no forwarding rule left');
    assert.not.ok(existsSync(join(LOCK_DIR, 'forwarding', tag)), 'no forwarding record left');
    assert.not.ok(existsSync(dir), 'no directory left');
    assert.is.not((await sh('lxc-info', ['-n', name])).exitCode, 0, 'no registration left');
  });
}

races.run();
