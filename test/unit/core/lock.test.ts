// The host-wide lock: held across processes, released by the kernel when its holder dies, never taken over.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { flockAndOfdLockWait, OFD_LOCK_FAILED } from '../../../src/core/commands.js';
import { holdsAlongside, lockHolder, lockPath, releaseAlongside, withLock } from '../../../src/core/lock.js';
import { eventually } from '../../helpers/locks.js';
import { skipUnless } from '../../helpers/skip.js';

/** The perl of create's lock code started by process `parent` (or orphaned from it: its parent then is 1 or a subreaper), by its script. */
function waiterPerl(parent: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0] !== '/usr/bin/perl' || !(argv[2] ?? '').includes('flock($first, 2)')) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent || !isAlive(parent)) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const name = `unit-${process.pid}`;
const runnable = skipUnless(test, 'lock tests', process.getuid?.() === 0, 'needs root to write /run/thin-lxc');

/** Another process holding the lock, as flock(1) holds it for a command. */
async function holder(): Promise<{ pid: number; kill: () => Promise<void> }> {
  withLock(name, () => undefined); // makes the file
  const child = spawn('flock', ['--exclusive', '--close', lockPath(name), 'sleep', '30'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  // flock holds it once it has started sleep: wait (bounded) until a try of ours fails.
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      withLock(name, () => undefined, 1);
    } catch {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { pid: child.pid!, kill: async () => void (child.kill('SIGKILL'), await exited) };
}

if (runnable) {
  test.after(() => rmSync(lockPath(name), { force: true }));

  test('a held lock makes others wait, and the timeout names the holder', async () => {
    const held = await holder();
    try {
      const started = Date.now();
      assert.throws(() => withLock(name, () => 'taken', 300), new RegExp(`timed out after 0.3 s waiting for ${lockPath(name)}, held by `));
      assert.ok(Date.now() - started >= 250, 'it waited');
    } finally {
      await held.kill();
    }
  });

  test('a lock held by hand (flock(1), an empty file) is "held by another process", never the kernel command line', async () => {
    const held = await holder();
    try {
      writeFileSync(lockPath(name), '');
      assert.throws(() => withLock(name, () => 'taken', 100), new RegExp(`waiting for ${lockPath(name)}, held by another process: if it hangs, stop it$`));
      assert.is(lockHolder(name), null);
    } finally {
      await held.kill();
    }
  });

  test('the kernel releases the lock when its holder is killed: the next one takes it at once', async () => {
    const held = await holder();
    await held.kill();
    const started = Date.now();
    assert.is(withLock(name, () => 'taken', 2_000), 'taken');
    assert.ok(Date.now() - started < 1_000, 'no waiting for a dead holder, whatever its pid');
  });

  test('once withLock returns, the lock names no holder, though its holder (this process) lives on', async () => {
    withLock(name, () => assert.is(lockHolder(name)?.pid, process.pid, 'named while held'), 100, 'commit web1 to img');
    assert.is(lockHolder(name), null, 'sync work released');
    await withLock(name, async () => undefined, 100, 'commit web1 to img');
    assert.is(lockHolder(name), null, 'async work released');
    assert.throws(() => withLock(name, () => { throw new Error('boom'); }, 100, 'commit web1 to img'), /boom/);
    assert.is(lockHolder(name), null, 'work that threw released');
  });

  test("a holder in a new pid namespace (LXC's pre-mount hook) is named by its host pid, the one /proc here knows", async () => {
    const lock = new URL('../../../src/core/lock.js', import.meta.url).pathname;
    const script = `const { withLock } = await import(${JSON.stringify(lock)}); ` +
      `await withLock(${JSON.stringify(name)}, () => new Promise((done) => { process.stdin.on('end', done).resume(); process.stdout.write('held\\n'); }), 2000, 'mount');`;
    const child = spawn('unshare', ['--pid', '--fork', process.execPath, '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      await new Promise<void>((resolve) => child.stdout.on('data', () => resolve()).on('end', () => resolve()));
      const holder = lockHolder(name);
      assert.ok(holder, 'a holder is named');
      // Its host pid's status shows the namespace pid 1 last: the process that holds the lock, not the host's init.
      assert.is.not(holder.pid, 1, 'not its pid inside the namespace');
      assert.match(readFileSync(`/proc/${holder.pid}/status`, 'utf8'), new RegExp(`\\nNSpid:\\t${holder.pid}\\t1\\n`));
      assert.is(holder.purpose, 'mount');
    } finally {
      child.stdin.end();
      await exited;
      clearTimeout(timer);
    }
  });

  // LXC's kind of lock (an OFD lock, as lxc-copy takes it on a container), on a file of the test's own.
  const alongside = { path: `/run/thin-lxc/unit-ofd-${process.pid}`, timedOut: 'timed out waiting for the OFD lock' };
  const OFD_LOCK = "my $l = pack('s s x4 q q i x4', 1, 0, 0, 0, 0);";
  /** Whether another process can take that OFD lock now (F_OFD_SETLK, no waiting). */
  test.after(() => rmSync(alongside.path, { force: true }));
  const othersCanTake = () =>
    spawnSync('perl', ['-e', `open(my $fh, '+<', '${alongside.path}') or exit 2; ${OFD_LOCK} exit(fcntl($fh, 37, $l) ? 0 : 1);`]).status === 0;

  test('a lock taken alongside (an OFD lock) is held by this process while the work runs, and let go after, whatever the work did', async () => {
    withLock(name, () => {
      assert.ok(holdsAlongside(alongside.path), 'this process knows it holds it');
      assert.not.ok(othersCanTake(), 'another process cannot take it');
    }, 1000, '', alongside);
    assert.not.ok(holdsAlongside(alongside.path));
    assert.ok(othersCanTake(), 'let go once the work returned');
    await withLock(name, async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.not.ok(othersCanTake(), 'held until asynchronous work settles');
    }, 1000, '', alongside);
    assert.ok(othersCanTake(), 'let go once it settled');
    assert.throws(() => withLock(name, () => { throw new Error('boom'); }, 1000, '', alongside), /boom/);
    assert.ok(othersCanTake(), 'let go when the work threw');
    assert.not.ok(holdsAlongside(alongside.path));
  });

  test('a lock taken alongside that another process holds makes withLock wait, then fail with its message, holding neither', async () => {
    const child = spawn('perl', ['-e', `open(my $fh, '+<', '${alongside.path}') or die; ${OFD_LOCK} fcntl($fh, 38, $l) or die; $| = 1; print "held\n"; sleep 30;`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()).once('end', () => resolve()));
      let ran = false;
      assert.throws(() => withLock(name, () => (ran = true), 1000, '', alongside), /^timed out waiting for the OFD lock$/);
      assert.not.ok(ran, 'the work never ran');
      assert.not.ok(holdsAlongside(alongside.path));
      assert.is(withLock(name, () => 'taken', 100), 'taken', 'its own lock was let go');
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });

  test('a lock taken alongside let go early (releaseAlongside) is free to others while the work goes on, and withLock then closes nothing else', async () => {
    let reused = -1;
    assert.is(withLock(name, () => {
      assert.not.ok(othersCanTake(), 'held at first');
      releaseAlongside(alongside.path);
      assert.not.ok(holdsAlongside(alongside.path), 'no longer marked');
      assert.ok(othersCanTake(), 'another process takes it while the work goes on');
      assert.throws(() => withLock(name, () => undefined, 1), /timed out/, "withLock's own lock is still held");
      reused = openSync('/dev/null', 'r'); // likely the number of the descriptor just closed
      return 'done';
    }, 1000, '', alongside), 'done');
    try {
      fstatSync(reused); // throws EBADF if withLock closed it as the alongside lock's descriptor
    } finally {
      closeSync(reused);
    }
    await withLock(name, async () => {
      releaseAlongside(alongside.path);
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(othersCanTake(), 'let go early in asynchronous work too');
    }, 1000, '', alongside);
    releaseAlongside(alongside.path); // quiet when not held
  });

  test("create's perl tells a failure of the lock taken alongside (not a timeout) from its own lock's, with the reason", () => {
    withLock(name, () => undefined); // makes the file
    writeFileSync(alongside.path, '');
    const own = openSync(lockPath(name), 'a+');
    const readOnly = openSync(alongside.path, 'r'); // an OFD write lock needs a file open for writing: EBADF
    try {
      const taken = flockAndOfdLockWait(own, readOnly, 1, 75);
      assert.ok(taken, 'perl ran');
      assert.not.ok([0, 1, 75, 76].includes(taken.exitCode), `an exit code of its own, not flock's failure or a timeout (${taken.exitCode})`);
      assert.is(taken.exitCode, OFD_LOCK_FAILED);
      assert.match(taken.stderr, /Bad file descriptor/);
    } finally {
      closeSync(own);
      closeSync(readOnly);
    }
  });

  test("create's perl, waiting for the lock taken alongside, lets go of create's own lock once the process that started it is killed, not after its whole wait", async () => {
    const child = spawn('perl', ['-e', `open(my $fh, '+<', '${alongside.path}') or die; ${OFD_LOCK} fcntl($fh, 38, $l) or die; $| = 1; print "held\n"; sleep 60;`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const lockModule = new URL('../../../src/core/lock.js', import.meta.url).pathname;
    // A create's process: waits up to 60 s for the OFD lock, holding its own ('create' here: `name`) meanwhile.
    const waiter = spawn(process.execPath, ['--input-type=module', '-e', `const { withLock } = await import(${JSON.stringify(lockModule)}); withLock(${JSON.stringify(name)}, () => undefined, 60_000, '', ${JSON.stringify(alongside)});`], { stdio: 'ignore' });
    const waiterExited = new Promise<void>((resolve) => waiter.on('exit', () => resolve()));
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()).once('end', () => resolve()));
      assert.ok(await eventually(() => waiterPerl(waiter.pid!) !== undefined, 10_000), "the create's perl waits for the lock taken alongside");
      assert.throws(() => withLock(name, () => undefined, 200), /timed out/, 'holding its own lock meanwhile');
      waiter.kill('SIGKILL');
      await waiterExited;
      assert.ok(await eventually(() => waiterPerl(waiter.pid!) === undefined, 5_000), 'its perl is gone soon after it, not 60 s later');
      assert.is(withLock(name, () => 'taken', 1_000), 'taken', "create's lock is free again");
    } finally {
      waiter.kill('SIGKILL');
      child.kill('SIGKILL');
      await Promise.all([exited, waiterExited]);
      const perl = waiterPerl(waiter.pid!);
      if (perl !== undefined) process.kill(perl, 'SIGKILL');
    }
  });

  test('a call that fails to take a lock taken alongside leaves the mark of the call that holds it', () => {
    const inner = `${name}-inner`;
    try {
      withLock(name, () => {
        // Another open file of the same process: OFD locks conflict, so it waits for the one held here and times out.
        assert.throws(() => withLock(inner, () => undefined, 1000, '', alongside), /^timed out waiting for the OFD lock$/);
        assert.ok(holdsAlongside(alongside.path), 'still marked as held: the outer call holds it');
        assert.not.ok(othersCanTake(), 'and still holds it');
      }, 2000, '', alongside);
      assert.not.ok(holdsAlongside(alongside.path));
      assert.ok(othersCanTake());
    } finally {
      rmSync(lockPath(inner), { force: true });
    }
  });

  test('a process given the lock\'s descriptor holds the lock after withLock returned, as after its caller died, until it exits; a waiter that times out is told its holder is gone', async () => {
    let child: ReturnType<typeof spawn> | undefined;
    withLock(name, (lockFd) => {
      child = spawn('sleep', ['30'], { stdio: ['ignore', 'ignore', 'ignore', lockFd] });
    }, 100, 'update web1');
    const exited = new Promise<void>((resolve) => child!.on('exit', () => resolve()));
    try {
      // What a killed holder leaves (withLock empties it when it returns).
      writeFileSync(lockPath(name), '99999999 update web1\n');
      assert.throws(
        () => withLock(name, () => 'taken', 200),
        new RegExp(`held by another process \\(its last holder, pid 99999999 \\(update web1\\), is gone: a tool it started may still be at work\\): let it finish, then try again$`),
      );
    } finally {
      child!.kill('SIGKILL');
      await exited;
    }
    assert.is(withLock(name, () => 'taken', 2_000), 'taken', 'let go once the process exited');
  });

  test('the lock is released when work throws, and work runs once', () => {
    let runs = 0;
    assert.throws(() => withLock(name, () => { runs++; throw new Error('boom'); }), /boom/);
    assert.is(withLock(name, () => ++runs, 100), 2);
  });
}

test.run();
