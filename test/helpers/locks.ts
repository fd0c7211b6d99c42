// Forcing interleavings in end-to-end tests: hold one of thin-lxc's locks from a child process, see who waits
// for it, and wait (bounded) for a condition.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { execa } from 'execa';
import { lockPath } from '../../src/core/lock.js';

export interface HeldLock {
  /** Lets go of the lock (the holder exits); safe to call twice. */
  release(): Promise<void>;
}

/** Takes thin-lxc's lock `name` (e.g. 'create', 'iptables', containerLockName(dir)) with flock(1), held until release(). */
export async function holdLock(name: string): Promise<HeldLock> {
  const holder = execa('flock', ['--exclusive', '--wait', '30', lockPath(name), 'sh', '-c', 'echo held; exec cat >/dev/null'], { reject: false, stdin: 'pipe' });
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.on('data', (data: Buffer) => (data.toString().includes('held') ? resolve() : undefined));
    void holder.then((result) => reject(new Error(`could not take ${lockPath(name)}: ${String(result.stderr)}`)));
  });
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      holder.stdin!.end();
      await holder;
    },
  };
}

/**
 * A process of thin-lxc's lock code that takes a lock on its descriptor 3: flock(1) started with `--wait`, or the perl
 * through which create takes its lock and LXC's lock on its base together (core/commands flockAndOfdLockWait).
 */
function isWaiter(argv: readonly string[]): boolean {
  if (argv[0]?.endsWith('flock')) return argv.includes('--wait') && argv.at(-2) === '3';
  return argv[0] === '/usr/bin/perl' && argv[1] === '-e' && (argv[2] ?? '').includes('flock($first, 2)');
}

/**
 * The processes of thin-lxc's lock code that wait for the lock `name` now: flock(1) started with `--wait` on its
 * descriptor 3 (or create's perl), open on that lock's file. Each entry is the pid of the thin-lxc process (or hook) that waits.
 */
export function waitingFor(name: string): number[] {
  const path = lockPath(name);
  const waiters: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!isWaiter(argv) || readlinkSync(`/proc/${entry}/fd/3`) !== path) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      waiters.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  return waiters;
}

/**
 * The pid of the flock(1) through which a process waits for lock `name`: process `parent`, or the first whose
 * command line mentions `parent` (a hook's, naming its container's directory).
 */
export function waiterOf(name: string, parent: number | string): number | undefined {
  const path = lockPath(name);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!isWaiter(argv) || readlinkSync(`/proc/${entry}/fd/3`) !== path) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (typeof parent === 'number' ? ppid === parent : readFileSync(`/proc/${ppid}/cmdline`, 'utf8').includes(parent)) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

/** Polls `check` every 50 ms until it holds or `timeoutMs` passed; whether it held. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
