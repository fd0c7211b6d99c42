// reload keeps the forwarding of a container that is not RUNNING but alive: frozen, or still starting.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerLockName, LOCK_DIR } from '../../src/core/lock.js';
import { removeForwarding } from '../../src/forward/apply.js';
import { containerSuite, must, removeLxcContainer, sh, startContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually, holdLock, waiterOf } from '../helpers/locks.js';
import { giveSocat, request, rulesLeftAfterStop, startServers } from '../helpers/net.js';
import { CLI } from '../helpers/paths.js';

const { tests: states, runnable, cleanup, base, root } = await containerSuite('reload and containers that are not RUNNING', 'sbase');

if (runnable) {
  let nextPort = 20_000 + Math.floor(Math.random() * 5_000);
  const port = () => nextPort++;
  const make = async (label: string) => {
    const name = uniqueName(label);
    cleanup.add(() => removeLxcContainer(name));
    const hostPort = port();
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${hostPort}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const dir = join(root, name);
    giveSocat(dir);
    const tag = tagOf(dir);
    // What a failing test leaves of its own rules goes too.
    cleanup.add(() => removeForwarding(tag, { reconcile: true }));
    return { name, dir, tag, hostPort };
  };

  states('lxc-freeze, reload, lxc-unfreeze: its published port still answers, and reload repaired its rules meanwhile', async () => {
    const made = await make('frz');
    assert.is((await startContainer(made.name)).exitCode, 0);
    await startServers(made.name);
    assert.is(await request('127.0.0.1', made.hostPort), `tcp-${made.name}`);
    await must('lxc-freeze', ['-n', made.name]);
    cleanup.add(() => sh('lxc-unfreeze', ['-n', made.name]));
    assert.is((await must('lxc-info', ['-n', made.name, '-s', '-H'])).trim(), 'FROZEN');
    const reloaded = await thinLxc(['reload', '--root', root]);
    assert.is(reloaded.exitCode, 0, reloaded.stderr);
    // A firewall reload that dropped this container's own jump, while it is frozen: reload puts it back.
    await must('iptables', ['-t', 'nat', '-D', 'THIN-LXC-DNAT', '-j', `${made.tag}-D`]);
    const repaired = await thinLxc(['reload', '--root', root]);
    assert.is(repaired.exitCode, 0, repaired.stderr);
    assert.match(repaired.stdout, made.name, 'reload names it among those it re-applied');
    await must('lxc-unfreeze', ['-n', made.name]);
    assert.is(await request('127.0.0.1', made.hostPort), `tcp-${made.name}`, 'the port answers after the thaw');
    await must('lxc-stop', ['-n', made.name, '-k']);
    assert.equal(await rulesLeftAfterStop(new RegExp(made.tag)), [], 'and its stop removes its rules');
  });

  states('reload leaves a container that restarted while it waited for its lock to that start\'s own hooks', async () => {
    const made = await make('rst');
    assert.is((await startContainer(made.name)).exitCode, 0);
    const lockName = containerLockName(made.dir);
    const held = await holdLock(lockName);
    const reload = execa(process.execPath, [CLI, 'reload', '--root', root], { reject: false, timeout: 60_000 });
    let waiter: number | undefined;
    try {
      // reload asked LXC (the first start runs), then waits for the lock; its wait is stopped while the container restarts.
      assert.ok(await eventually(() => (waiter = waiterOf(lockName, reload.pid!)) !== undefined), 'reload waits for the container\'s lock');
      process.kill(waiter!, 'SIGSTOP');
      await held.release();
      await must('lxc-stop', ['-n', made.name, '-k']);
      assert.is((await startContainer(made.name)).exitCode, 0, 'the container started again');
    } finally {
      await held.release();
      if (waiter) process.kill(waiter, 'SIGCONT');
    }
    const reloaded = await reload;
    assert.is(reloaded.exitCode, 0, String(reloaded.stderr));
    assert.not.match(String(reloaded.stdout), made.name, 'reload did not re-apply the second start\'s forwarding as the first one\'s');
    await startServers(made.name);
    assert.is(await request('127.0.0.1', made.hostPort), `tcp-${made.name}`, 'its port answers, forwarded by its own start');
    await must('lxc-stop', ['-n', made.name, '-k']);
    assert.equal(await rulesLeftAfterStop(new RegExp(made.tag)), [], 'and its stop removes its rules');
  });

  states('reload of a running container whose forwarding has no record of its start records none it made up, and the stop removes it', async () => {
    const made = await make('rec');
    assert.is((await startContainer(made.name)).exitCode, 0);
    const record = join(LOCK_DIR, 'forwarding', made.tag);
    assert.ok(existsSync(record), 'the start recorded its forwarding');
    rmSync(record);
    const reloaded = await thinLxc(['reload', '--root', root]);
    assert.is(reloaded.exitCode, 0, reloaded.stderr);
    assert.match(reloaded.stdout, made.name, 'reload re-applied its forwarding');
    assert.is(readFileSync(record, 'utf8'), '', 'the start that installed it is recorded as unknown, not as a pid LXC gave');
    await must('lxc-stop', ['-n', made.name, '-k']);
    assert.equal(await rulesLeftAfterStop(new RegExp(made.tag)), [], 'and its stop removes its rules');
  });

  states('reload during a start held after its forwarding hook waits for LXC, then re-applies that start\'s forwarding: the started container forwards', async () => {
    const made = await make('sta');
    // One more start-host hook after thin-lxc's, which waits on a fifo: the start stays STARTING meanwhile.
    const fifo = join(root, `${made.name}.fifo`);
    await must('mkfifo', [fifo]);
    const release = () => execa('sh', ['-c', 'echo go > "$1"', 'sh', fifo], { reject: false, timeout: 5_000 });
    const config = join(made.dir, 'image', 'config');
    writeFileSync(config, `${readFileSync(config, 'utf8')}lxc.hook.start-host = /bin/sh -c "read line < ${fifo}"\n`);
    let startExited = false;
    const starting = sh('lxc-start', ['-n', made.name, '-d']).finally(() => (startExited = true));
    try {
      assert.ok(await eventually(() => existsSync(join('/run/thin-lxc/forwarding', made.tag))), 'its forwarding hook ran');
      assert.not.ok(startExited, 'the start is held');
      const reload = execa(process.execPath, [CLI, 'reload', '--root', root], { reject: false, timeout: 60_000 });
      let reloadExited = false;
      void reload.finally(() => (reloadExited = true));
      // LXC answers lxc-ls about a starting container only once its start hooks are done: reload waits for it.
      assert.ok(await eventually(() => !reloadExited && childNamed(reload.pid!, 'lxc-ls')), 'reload waits for LXC while the start is held');
      await release();
      const reloaded = await reload;
      assert.is(reloaded.exitCode, 0, String(reloaded.stderr));
      assert.match(String(reloaded.stdout), made.name, `reload re-applied the forwarding of the start LXC then reported: ${String(reloaded.stdout)}`);
    } finally {
      if (!startExited) await release();
    }
    assert.is((await starting).exitCode, 0);
    await startServers(made.name);
    assert.is(await request('127.0.0.1', made.hostPort), `tcp-${made.name}`, 'its port answers');
    await must('lxc-stop', ['-n', made.name, '-k']);
    assert.equal(await rulesLeftAfterStop(new RegExp(made.tag)), [], 'and its stop removes its rules');
  });
}

/** Whether process `pid` has a child running `name`. */
function childNamed(pid: number, name: string): boolean {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return children.some((child) => readFileSync(`/proc/${child}/comm`, 'utf8').trim() === name);
  } catch {
    return false;
  }
}

states.run();
