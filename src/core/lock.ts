// Host-wide locks between thin-lxc processes (creates choosing addresses, hooks editing iptables): flock(2)
// on a file in /run/thin-lxc, which the kernel releases when its holder dies, so there is nothing to take over.
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { flockWait } from './commands.js';
import { UserError } from './errors.js';

export const LOCK_DIR = '/run/thin-lxc';
/** What flock(1) exits with when the wait times out, so it is told apart from any other failure. */
const TIMED_OUT = 75;

export function lockPath(name: string): string {
  return join(LOCK_DIR, `${name}.flock`);
}

/**
 * Runs `work` holding the lock (until its promise settles, if it returns one). Node has no flock(2), so flock(1) takes it on our open file: the lock
 * belongs to the open file description, which this process keeps after flock(1) exits, until it closes
 * the file or dies.
 */
export function withLock<T>(name: string, work: () => T, timeoutMs = 20_000): T {
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
  const path = lockPath(name);
  const fd = openSync(path, 'a+', 0o600);
  let settles = false;
  try {
    const seconds = String(Math.max(timeoutMs / 1000, 0.001));
    const taken = flockWait(fd, seconds, TIMED_OUT);
    if (taken.exitCode === TIMED_OUT) {
      throw new UserError(`timed out after ${seconds} s waiting for ${path}, held by ${holderOf(path)}: if it hangs, stop it`);
    }
    if (taken.exitCode !== 0) throw new UserError(`cannot lock ${path}: ${taken.stderr.trim() || `flock exited ${taken.exitCode}`}`);
    // Who holds it, for the message of whoever times out waiting: information only, never acted on.
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`);
    const result = work();
    // Asynchronous work keeps the lock until it settles.
    if (result instanceof Promise) {
      settles = true;
      return result.finally(() => closeSync(fd)) as T;
    }
    return result;
  } finally {
    if (!settles) closeSync(fd);
  }
}

function holderOf(path: string): string {
  try {
    const pid = readFileSync(path, 'utf8').trim();
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return `pid ${pid} (${command})`;
  } catch {
    return 'another process';
  }
}
