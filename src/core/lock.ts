// Locks between thin-lxc processes: host-wide ones (creates choosing addresses, hooks editing iptables) and one
// per thin container (commands and hooks that touch it). flock(2) on a file in /run/thin-lxc, which the kernel
// releases when its holder dies, so there is nothing to take over.
//
// Order, so that no two processes wait for each other: a container's lock first, then 'create', then LXC's lock on
// a base (create takes it alongside 'create', see AlongsideLock), then 'iptables'. Nobody holding a lock waits for a
// hook that takes the same lock, and nothing run while LXC's lock on a base is held calls an LXC tool on that base
// (the tool would wait for it).
import { createHash } from 'node:crypto';
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { flockAndOfdLockWait, flockWait, OFD_LOCK_FAILED } from './commands.js';
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
 * the file or dies. `work` is given that file's descriptor: a tool that must hold the lock for as long as it runs,
 * even past our death, is handed it (core/commands's `fds`), and the lock is then let go once both closed it.
 */
export function withLock<T>(name: string, work: (lockFd: number) => T, timeoutMs = 20_000, purpose = '', alongside?: AlongsideLock): T {
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
  const path = lockPath(name);
  const fd = openSync(path, 'a+', 0o600);
  let other: number | null = null;
  let settles = false;
  let held = false;
  let marked = false;
  try {
    const seconds = String(Math.max(timeoutMs / 1000, 0.001));
    let taken = null;
    if (alongside) {
      other = openOfdLockFile(alongside.path);
      taken = flockAndOfdLockWaitIfPerl(fd, other, Number(seconds));
      if (taken === null) {
        // No perl for it: the caller takes that lock itself, later, as it would without `alongside`.
        closeSync(other);
        other = null;
      }
    }
    taken ??= flockWait(fd, seconds, TIMED_OUT);
    if (taken.exitCode === TIMED_OUT) {
      const holder = holderOf(name);
      // A tool a killed holder left at work (update's resize2fs) is let finish: stopping it would damage what it writes.
      const fix = holder.includes(GONE) ? 'let it finish, then try again' : 'if it hangs, stop it';
      throw new UserError(`timed out after ${seconds} s waiting for ${path}, held by ${holder}: ${fix}`);
    }
    if (alongside && taken.exitCode === TIMED_OUT + 1) throw new UserError(alongside.timedOut);
    if (alongside && taken.exitCode === OFD_LOCK_FAILED) throw new UserError(`cannot lock ${alongside.path}: ${taken.stderr.trim() || `fcntl failed`}`);
    if (taken.exitCode !== 0) throw new UserError(`cannot lock ${path}: ${taken.stderr.trim() || `flock exited ${taken.exitCode}`}`);
    held = true;
    if (alongside && other !== null) {
      heldAlongside.set(alongside.path, other);
      marked = true;
    }
    // Who holds it, for the message of whoever times out waiting: information only, never acted on.
    ftruncateSync(fd, 0);
    writeSync(fd, `${hostPid()}${purpose ? ` ${purpose}` : ''}\n`);
    const result = work(fd);
    // Asynchronous work keeps the lock until it settles.
    if (result instanceof Promise) {
      settles = true;
      return result.finally(() => release(fd, held, other, marked ? alongside : undefined)) as T;
    }
    return result;
  } finally {
    if (!settles) release(fd, held, other, marked ? alongside : undefined);
  }
}

/**
 * An OFD lock (LXC's kind: fcntl F_OFD_SETLKW on the whole file) that withLock takes in the same process as its own,
 * right after it, and holds as long, or until releaseAlongside: a create takes LXC's lock on its base so, which saves
 * it a process (measured: see createContainer). `timedOut` is the message when waiting for it timed out.
 */
export interface AlongsideLock {
  path: string;
  timedOut: string;
}

/**
 * Alongside locks this process holds now, each with the descriptor it is held on: taking one again through another
 * open file would wait for itself.
 */
const heldAlongside = new Map<string, number>();

export function holdsAlongside(path: string): boolean {
  return heldAlongside.has(path);
}

/**
 * Lets go of the alongside lock on `path` before withLock ends, keeping withLock's own: LXC's tools (lxc-info,
 * lxc-start, lxc-attach of the base) wait for it while it is held. Quiet when this process does not hold it.
 */
export function releaseAlongside(path: string): void {
  const fd = heldAlongside.get(path);
  if (fd === undefined) return;
  heldAlongside.delete(path);
  closeSync(fd);
}

/** Opens (making it, and its folder) a file to take an OFD lock on, as LXC's lock files are: never through a symlink. */
export function openOfdLockFile(path: string): number {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  return openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
}

/** null when perl cannot take the OFD lock here (another layout of struct flock, or no perl at all). */
function flockAndOfdLockWaitIfPerl(fd: number, other: number, seconds: number): ReturnType<typeof flockWait> | null {
  try {
    return flockAndOfdLockWait(fd, other, seconds, TIMED_OUT);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return null; // no perl
  }
}

/**
 * Our pid as the host's /proc knows it, which lockHolder and holderOf read. LXC runs the pre-mount hook in the
 * container's new pid namespace (process.pid is small there, another process's pid on the host), but with the
 * host's /proc still mounted, where /proc/self names us by our host pid.
 */
function hostPid(): string {
  try {
    return readlinkSync('/proc/self');
  } catch {
    return String(process.pid);
  }
}

/**
 * Empties the file while still holding the lock, then lets go: a holder's pid left in it would name whoever
 * reuses that pid later, and a stale "commit" holder would make every start refuse.
 */
function release(fd: number, held: boolean, other: number | null = null, marked?: AlongsideLock): void {
  try {
    // A waiter that timed out never held it: the file names the holder.
    if (held) ftruncateSync(fd, 0);
  } finally {
    closeSync(fd);
    if (!marked) {
      // Never marked: another call's mark on the same path (one that holds it) stays.
      if (other !== null) closeSync(other);
    } else if (heldAlongside.get(marked.path) === other) {
      // Still held: releaseAlongside already closed it otherwise, and its number may be another file's now.
      heldAlongside.delete(marked.path);
      closeSync(other!);
    }
  }
}

/**
 * The lock of one thin container, named after its directory (ids repeat across roots): create's replace,
 * update, destroy, commit, refresh and the hooks that read its state serialise on it.
 */
export function containerLockName(containerDir: string): string {
  return `container-${createHash('sha256').update(resolve(containerDir)).digest('hex').slice(0, 16)}`;
}

/** `withLock` on the container's lock; `purpose` (e.g. `commit web to img`) is what a waiter that times out is told. */
export function withContainerLock<T>(containerDir: string, purpose: string, work: (lockFd: number) => T, timeoutMs = 20_000): T {
  return withLock(containerLockName(containerDir), work, timeoutMs, purpose);
}

/**
 * What the lock's last holder wrote (pid and purpose), if that process is still alive: information only, since
 * the holder may have let go a moment ago.
 */
export function lockHolder(name: string): { pid: number; purpose: string } | null {
  try {
    const [pid = '', ...purpose] = readFileSync(lockPath(name), 'utf8').trim().split(' ');
    // An empty file (a lock taken by hand with flock(1)) names no pid: /proc//cmdline would be the kernel's.
    if (!/^\d+$/.test(pid)) return null;
    const alive = readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== '';
    return alive ? { pid: Number(pid), purpose: purpose.join(' ') } : null;
  } catch {
    return null;
  }
}

/**
 * When the file names a holder that is gone, what it was: it was killed while a tool it gave the lock to (update's
 * resize2fs) still runs, and that tool holds it now. Empty otherwise.
 */
const GONE = 'is gone: a tool it started may still be at work';

function goneHolder(name: string): string {
  try {
    const [pid = '', ...purpose] = readFileSync(lockPath(name), 'utf8').trim().split(' ');
    if (!/^\d+$/.test(pid) || purpose.length === 0) return '';
    return ` (its last holder, pid ${pid} (${purpose.join(' ')}), ${GONE})`;
  } catch {
    return '';
  }
}

/** Who holds the lock, for a waiter's timeout message: its purpose, or its command line. */
function holderOf(name: string): string {
  const holder = lockHolder(name);
  if (!holder) return `another process${goneHolder(name)}`;
  if (holder.purpose) return `pid ${holder.pid} (${holder.purpose})`;
  try {
    return `pid ${holder.pid} (${readFileSync(`/proc/${holder.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')})`;
  } catch {
    return 'another process';
  }
}
