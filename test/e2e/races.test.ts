// Commands and hooks that touch one container serialise on it: each test forces one interleaving (a lock held
// from a child process, a waiter of thin-lxc's own stopped at the lock) and checks that nothing is lost, nothing
// is published twice, no write layer is removed under a start, and the host's rules are exactly those of the
// final state of the running containers.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { readState } from '../../src/state/state.js';
import { containerLockName } from '../../src/core/lock.js';
import { removeForwarding } from '../../src/forward/apply.js';
import { containerSuite, hostMountsMentioning, must, removeLxcContainer, sh, startContainer, tagOf, thinLxc, uniqueName, type Ran } from '../helpers/host.js';
import { eventually, holdLock, waiterOf, waitingFor } from '../helpers/locks.js';
import { giveSocat, request, rulesLeftAfterStop, rulesOf, startServers } from '../helpers/net.js';
import { CLI } from '../helpers/paths.js';

const { tests: races, runnable, cleanup, base, root } = await containerSuite('commands and hooks serialise on a container', 'rbase');

/** A thin-lxc command run in the background: its pid (to see what it waits for) and its outcome. */
function launch(args: readonly string[]): { pid: number; done: Promise<Ran>; exited: () => boolean } {
  const child = execa(process.execPath, [CLI, ...args], { reject: false, timeout: 60_000, stdin: 'ignore' });
  let exited = false;
  const done = child.then((result) => {
    exited = true;
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
  });
  return { pid: child.pid!, done, exited: () => exited };
}

/** Stands for a command a failed assertion kept from being launched. */
function notLaunched(): ReturnType<typeof launch> {
  return { pid: -1, done: Promise.resolve({ exitCode: -1, stdout: '', stderr: 'not launched' }), exited: () => true };
}

/** The host ports of the DNAT rules in a container's own chain, as `PORT/PROTO`, sorted. */
async function forwardedPorts(tag: string): Promise<string[]> {
  const nat = (await must('iptables-save', ['-t', 'nat'])).split('\n').filter((line) => line.startsWith(`-A ${tag}-D `) && line.includes('-j DNAT'));
  return nat.map((line) => `${/--dport (\d+)/.exec(line)?.[1]}/${/-p (\w+)/.exec(line)?.[1]}`).sort();
}

if (runnable) {
  let nextPort = 26_000 + Math.floor(Math.random() * 7_000);
  const port = () => nextPort++;
  const published = (name: string) => readState(join(root, name)).publish;
  const make = async (name: string, args: readonly string[] = []) => {
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, ...args]);
    assert.is(created.exitCode, 0, created.stderr);
    giveSocat(join(root, name));
    const tag = tagOf(join(root, name));
    // What a failing test leaves of its own rules goes too.
    cleanup.add(() => removeForwarding(tag, { reconcile: true }));
    return { name, dir: join(root, name), tag };
  };
  /** The rules on the host are those of the final state: a running container's ports, nothing for a stopped one. */
  const rulesMatchState = async (made: { name: string; tag: string }, running: boolean) => {
    if (running) {
      const expected = published(made.name).map((spec) => `${/(\d+)(?:-\d+)?:\d+/.exec(spec)?.[1]}/${spec.endsWith('/udp') ? 'udp' : 'tcp'}`).sort();
      assert.equal(await forwardedPorts(made.tag), expected, `${made.name}'s rules forward exactly the ports its state publishes`);
      if (expected.length === 0) assert.equal(await rulesOf(made.tag), [], `${made.name} publishes nothing: no rules of it are left`);
    } else {
      assert.equal(await rulesLeftAfterStop(new RegExp(made.tag)), [], `${made.name} is stopped: no rules of it are left`);
    }
  };
  const stop = async (made: { name: string; tag: string }) => {
    await must('lxc-stop', ['-n', made.name, '-k']);
    await rulesMatchState(made, false);
  };

  races('two updates of one running container at once: both changes are kept, and its rules forward exactly its final ports', async () => {
    const made = await make(uniqueName('uu'), ['-p', `${port()}:80`]);
    assert.is((await startContainer(made.name)).exitCode, 0);
    await startServers(made.name);
    const [first, second] = [port(), port()];
    const held = await holdLock('create');
    let [one, two] = [notLaunched(), notLaunched()];
    try {
      one = launch(['update', made.name, '--root', root, '-p', `${first}:80`]);
      assert.ok(await eventually(() => waitingFor('create').includes(one.pid)), 'the first update waits for the create lock');
      two = launch(['update', made.name, '--root', root, '-p', `${second}:80`]);
      assert.ok(
        await eventually(() => waitingFor('create').includes(two.pid) || waitingFor(containerLockName(made.dir)).includes(two.pid)),
        'the second update waits too',
      );
    } finally {
      await held.release();
    }
    const [a, b] = [await one.done, await two.done];
    assert.is(a.exitCode, 0, a.stderr);
    assert.is(b.exitCode, 0, b.stderr);
    assert.ok(published(made.name).includes(`${first}:80/tcp`) && published(made.name).includes(`${second}:80/tcp`), `both ports are in the state: ${published(made.name).join(', ')}`);
    await rulesMatchState(made, true);
    assert.is(await request('127.0.0.1', second), `tcp-${made.name}`);
    await stop(made);
  });

  races('an update racing a create never publishes one host port twice', async () => {
    const made = await make(uniqueName('uc'), ['-p', `${port()}:80`]);
    assert.is((await startContainer(made.name)).exitCode, 0);
    const contested = port();
    const other = uniqueName('uc2');
    cleanup.add(() => removeLxcContainer(other));
    const held = await holdLock('create');
    let [update, create] = [notLaunched(), notLaunched()];
    let updateWaiter: number | undefined;
    let created: Ran;
    try {
      update = launch(['update', made.name, '--root', root, '-p', `${contested}:80`]);
      assert.ok(await eventually(() => (updateWaiter = waiterOf('create', update.pid)) !== undefined), 'the update waits for the create lock');
      create = launch(['create', other, '--base', base, '--root', root, '-p', `${contested}:80`]);
      assert.ok(await eventually(() => waitingFor('create').includes(create.pid)), 'the create waits for it too');
      // The create goes first: the update's wait is stopped while the lock changes hands.
      process.kill(updateWaiter!, 'SIGSTOP');
      await held.release();
      created = await create.done;
    } finally {
      await held.release();
      if (updateWaiter) process.kill(updateWaiter, 'SIGCONT');
    }
    const updated = await update.done;
    assert.is(created.exitCode, 0, created.stderr);
    assert.is(updated.exitCode, 2, `the update is refused, as the create took the port first: ${updated.stdout}`);
    assert.is(updated.stderr.trim(), `thin-lxc: host port of ${contested}:80/tcp is already published by thin container ${other} (${contested}:80/tcp): choose another host port`);
    assert.not.ok(published(made.name).includes(`${contested}:80/tcp`), 'the state does not publish it');
    await rulesMatchState(made, true);
    await stop(made);
  });

  races('an update --unpublish racing a start leaves no rules behind, running or stopped', async () => {
    const hostPort = port();
    const made = await make(uniqueName('us'), ['-p', `${hostPort}:80`]);
    // The update has looked at the container (stopped) and waits to write; the start comes in between.
    const held = await holdLock('create');
    let update = notLaunched();
    let starting: Promise<Ran> = Promise.resolve({ exitCode: -1, stdout: '', stderr: '' });
    try {
      update = launch(['update', made.name, '--root', root, '--unpublish', String(hostPort)]);
      assert.ok(await eventually(() => waitingFor('create').includes(update.pid)), 'the update waits for the create lock');
      let startExited = false;
      starting = sh('lxc-start', ['-n', made.name, '-d']).finally(() => (startExited = true));
      assert.ok(await eventually(() => startExited || waitingFor(containerLockName(made.dir)).length > 0), 'the start has run, or waits for the container');
    } finally {
      await held.release();
    }
    const [updated, started] = [await update.done, await starting];
    assert.is(started.exitCode, 0, started.stderr);
    assert.is(updated.exitCode, 0, updated.stderr);
    assert.equal(published(made.name), [], 'the state publishes nothing');
    await rulesMatchState(made, true);
    await stop(made);
  });

  races('destroy racing a start: the start is refused once the container is gone, never run on a removed write layer', async () => {
    const made = await make(uniqueName('ds'), ['-p', `${port()}:80`]);
    const held = await holdLock('create');
    let destroy = notLaunched();
    let starting: Promise<Ran> = Promise.resolve({ exitCode: -1, stdout: '', stderr: '' });
    try {
      destroy = launch(['destroy', made.name, '--root', root]);
      assert.ok(await eventually(() => waitingFor('create').includes(destroy.pid)), 'destroy checked the container and waits for the create lock');
      let startExited = false;
      starting = sh('lxc-start', ['-n', made.name, '-d']).finally(() => (startExited = true));
      assert.ok(await eventually(() => startExited || waitingFor(containerLockName(made.dir)).length > 0), 'the start has run, or waits for the container');
    } finally {
      await held.release();
    }
    const [destroyed, started] = [await destroy.done, await starting];
    assert.is(destroyed.exitCode, 0, destroyed.stderr);
    assert.is.not(started.exitCode, 0, 'the start is refused: the container was being destroyed');
    assert.is((await sh('lxc-info', ['-n', made.name, '-s', '-H'])).stdout.trim(), '', 'LXC knows no such container');
    assert.equal(hostMountsMentioning(made.dir), [], 'nothing of it is mounted');
    await rulesMatchState(made, false);
  });

  // lxc-stop returns only once LXC has run the post-stop hooks, which take the container's lock: whoever stops a
  // container must not hold that lock meanwhile, or the hook waits it out and fails.
  for (const [what, args] of [
    ['create --replace', (made: { name: string }) => ['create', made.name, '--base', base, '--root', root, '-p', `${port()}:80`, '--replace']],
    ['destroy --force', (made: { name: string }) => ['destroy', made.name, '--root', root, '--force']],
  ] as const) {
    races(`${what} of a running container: its post-stop hooks run, none waits out the container's lock`, async () => {
      const made = await make(uniqueName('rp'), ['-p', `${port()}:80`]);
      const log = join(root, `${made.name}.lxc.log`);
      assert.is((await startContainer(made.name, ['-l', 'DEBUG', '-o', log])).exitCode, 0);
      const ran = await thinLxc(args(made));
      assert.is(ran.exitCode, 0, ran.stderr);
      const hookLines = readFileSync(log, 'utf8').split('\n').filter((line) => /thin-lxc|post-stop/.test(line));
      assert.equal(hookLines.filter((line) => /timed out|Failed to run lxc\.hook\.post-stop/.test(line)), [], 'no post-stop hook failed');
      assert.ok(hookLines.some((line) => line.includes('thin-lxc-ports-down.js')), 'its forwarding hook ran at the stop');
      await rulesMatchState(made, false);
    });
  }

  races("a start waits for the container's lock at most 20 s, then fails saying who holds it", async () => {
    const made = await make(uniqueName('to'));
    // Held by flock(1), which writes no pid or purpose into the lock's file.
    const held = await holdLock(containerLockName(made.dir));
    let started: Ran;
    try {
      started = await sh('lxc-start', ['-n', made.name, '-d'], 90_000);
    } finally {
      await held.release();
    }
    assert.is.not(started.exitCode, 0, 'the start failed');
    const reason = readFileSync(join(made.dir, 'hook.log'), 'utf8').trim().split('\n');
    assert.is(reason.length, 1, 'one line in hook.log');
    assert.match(reason[0]!, /thin-lxc: timed out after 20 s waiting for \/run\/thin-lxc\/container-[0-9a-f]+\.flock, held by another process: if it hangs, stop it \(lxc\.hook\.pre-mount of /, reason[0]);
    assert.is((await must('lxc-info', ['-n', made.name, '-s', '-H'])).trim(), 'STOPPED');
    assert.is((await startContainer(made.name)).exitCode, 0, 'once the lock is free the container starts');
    await stop(made);
  });

  /** An address of the bridge that no container has: a thin container's, given back by destroying it. */
  const freeAddress = async () => {
    const made = await make(uniqueName('fa'));
    const ip = readState(made.dir).ip!;
    assert.is((await thinLxc(['destroy', made.name, '--root', root])).exitCode, 0);
    return ip;
  };

  races("create --ip never waits for LXC's answer about other containers: it finishes while another container's start waits in its hook for that container's lock", async () => {
    const held = await make(uniqueName('hs'));
    const ip = await freeAddress();
    const other = uniqueName('ip');
    cleanup.add(() => removeLxcContainer(other));
    const lock = await holdLock(containerLockName(held.dir));
    let starting: Promise<Ran> = Promise.resolve({ exitCode: 0, stdout: '', stderr: '' });
    let created: Ran;
    let startStillWaits = false;
    try {
      // Until its pre-mount hook has the lock, LXC answers nobody about the lxcpath's containers (lxc-ls waits).
      starting = sh('lxc-start', ['-n', held.name, '-d'], 90_000);
      assert.ok(await eventually(() => waiterOf(containerLockName(held.dir), held.dir) !== undefined), "the start waits in its hook for the container's lock");
      created = await thinLxc(['create', other, '--base', base, '--root', root, '--ip', ip]);
      startStillWaits = waiterOf(containerLockName(held.dir), held.dir) !== undefined;
    } finally {
      await lock.release();
    }
    assert.is(created.exitCode, 0, created.stderr);
    assert.is(readState(join(root, other)).ip, ip, 'the new container has the requested address');
    assert.ok(startStillWaits, "the create finished while the start still waited for the lock (it did not wait out the hook's 20 s)");
    assert.is((await starting).exitCode, 0, 'the start went on once the lock was free');
    await stop(held);
  });

  races("create --replace --ip of a container whose start waits for its lock: holding that lock the replace never waits for LXC, so the start's hook never times out", async () => {
    const made = await make(uniqueName('rs'));
    const ip = await freeAddress();
    const lockName = containerLockName(made.dir);
    // Outside the container's directory, which the replace removes.
    const log = join(root, `${made.name}.lxc.log`);
    const lock = await holdLock(lockName);
    let starting: Promise<Ran> = Promise.resolve({ exitCode: 0, stdout: '', stderr: '' });
    let replace = notLaunched();
    let hookWaiter: number | undefined;
    try {
      starting = sh('lxc-start', ['-n', made.name, '-d', '-l', 'DEBUG', '-o', log], 90_000);
      assert.ok(await eventually(() => (hookWaiter = waiterOf(lockName, made.dir)) !== undefined), "the start waits in its pre-mount hook for the container's lock");
      // The hook's wait is stopped while the lock changes hands, so that the replace takes it first.
      process.kill(hookWaiter!, 'SIGSTOP');
      replace = launch(['create', made.name, '--base', base, '--root', root, '--ip', ip, '--replace']);
      assert.ok(await eventually(() => waiterOf(lockName, replace.pid) !== undefined), "the replace waits for the container's lock");
      await lock.release();
      assert.ok(await eventually(() => replace.exited() || waiterOf(lockName, replace.pid) === undefined), "the replace took the container's lock");
    } finally {
      await lock.release();
      if (hookWaiter) process.kill(hookWaiter, 'SIGCONT');
    }
    const replaced = await replace.done;
    await starting;
    const failed = readFileSync(log, 'utf8').split('\n').filter((line) => /timed out|Failed to run lxc\.hook/.test(line));
    assert.equal(failed, [], "no hook of the start waited out the container's lock");
    assert.is(replaced.exitCode, 0, replaced.stderr);
    assert.is(readState(made.dir).ip, ip, 'the new container has the requested address');
  });

  races('refresh waits while the container is being changed, and rewrites what the change wrote', async () => {
    const made = await make(uniqueName('rf'));
    const config = join(made.dir, 'image', 'config');
    const current = readFileSync(config, 'utf8');
    const hooksDir = /\S*\/dist\/hooks\//.exec(current)?.[0];
    assert.ok(hooksDir, 'the config runs hooks from this installation');
    const stale = current.replaceAll(hooksDir!, '/opt/thin-lxc-old/dist/hooks/');
    writeFileSync(config, stale);
    // The holder stands for a change in progress (an update): it read the config and will write it back changed.
    const held = await holdLock(containerLockName(made.dir));
    let refresh = notLaunched();
    try {
      refresh = launch(['refresh', made.name, '--root', root]);
      assert.ok(await eventually(() => refresh.exited() || waiterOf(containerLockName(made.dir), refresh.pid) !== undefined), 'refresh has run, or waits');
      writeFileSync(config, `${stale}# changed under the lock\n`);
    } finally {
      await held.release();
    }
    const refreshed = await refresh.done;
    assert.is(refreshed.exitCode, 0, refreshed.stderr);
    const after = readFileSync(config, 'utf8');
    assert.match(after, '# changed under the lock', "the change's write is kept");
    assert.not.match(after, '/opt/thin-lxc-old/', 'and refresh pointed its hooks at this installation');
  });
}

races.run();
