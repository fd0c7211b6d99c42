// A base's lxc_snapshots: LXC's record of the containers stacked on it (its `lxc-copy -s` snapshots, and thin-lxc's
// thin containers), which makes `lxc-destroy` of the base refuse ("has clones"). LXC's own format (lxccontainer.c,
// mod_rdep): each dependent as its lxcpath and its name, a line each; the file goes with its last entry. An older
// format holds only a count, which LXC keeps counting in, and so does thin-lxc. Every change is made holding LXC's own
// lock on the base, as lxc-copy and lxc-destroy do.
import { closeSync, constants, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { flockWait, ofdLockWait } from '../core/commands.js';
import { UserError } from '../core/errors.js';
import { writeFileAtomic } from '../core/files.js';
import { holdsAlongside, openOfdLockFile, releaseAlongside, type AlongsideLock } from '../core/lock.js';

export interface Dependent {
  lxcpath: string;
  name: string;
}

export const SNAPSHOTS_FILE = 'lxc_snapshots';
/** LXC's lock files: `/run/lxc/lock/<lxcpath>/.<name>` for root (lxclock.c, lxclock_name). */
const LXC_LOCK_DIR = '/run/lxc/lock';
const TIMED_OUT = 75;

export function snapshotsFile(baseDir: string): string {
  return join(baseDir, SNAPSHOTS_FILE);
}

/** The file's dependents, or the count of the older format. */
export function parseSnapshots(text: string): { count: number } | { entries: Dependent[] } {
  if (/^\s*\d+\s*$/.test(text)) return { count: Number(text.trim()) };
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const entries: Dependent[] = [];
  for (let index = 0; index + 1 < lines.length; index += 2) entries.push({ lxcpath: lines[index]!, name: lines[index + 1]! });
  return { entries };
}

export function formatSnapshots(entries: readonly Dependent[]): string {
  return entries.map(({ lxcpath, name }) => `${lxcpath}\n${name}\n`).join('');
}

function same(a: Dependent, b: Dependent): boolean {
  return a.lxcpath === b.lxcpath && a.name === b.name;
}

/** The file's text, never through a symlink; '' when there is none. */
function readSnapshots(baseDir: string): string {
  let fd: number;
  try {
    fd = openSync(snapshotsFile(baseDir), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Dependents listed in a base's lxc_snapshots; none for the count format, which names nobody. */
export function listedDependents(baseDir: string): Dependent[] {
  try {
    const parsed = parseSnapshots(readSnapshots(baseDir));
    return 'entries' in parsed ? parsed.entries : [];
  } catch {
    return [];
  }
}

/** Whether `dependent` is registered with the base (the count format counts everyone, so it says yes). */
export function isListed(baseDir: string, dependent: Dependent): boolean {
  try {
    const parsed = parseSnapshots(readSnapshots(baseDir));
    return 'count' in parsed ? parsed.count > 0 : parsed.entries.some((entry) => same(entry, dependent));
  } catch {
    return false;
  }
}

/** Adds `dependent` to the base's lxc_snapshots, once. */
export function addDependent(baseDir: string, dependent: Dependent): void {
  if (/\n/.test(dependent.lxcpath + dependent.name)) throw new UserError(`${dependent.lxcpath}/${dependent.name} has a newline in it, which lxc_snapshots cannot hold`);
  withLxcLock(baseDir, () => {
    const parsed = parseSnapshots(readSnapshots(baseDir));
    if ('count' in parsed && parsed.count > 0) {
      writeFileAtomic(snapshotsFile(baseDir), `${parsed.count + 1}\n`);
      return;
    }
    if ('count' in parsed) rmSync(snapshotsFile(baseDir), { force: true }); // LXC's own step: a count of 0 starts the list format
    else if (parsed.entries.some((entry) => same(entry, dependent))) return;
    // One append, as LXC's own: a reader never sees half an entry.
    const fd = openSync(snapshotsFile(baseDir), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
    try {
      writeSync(fd, formatSnapshots([dependent]));
    } finally {
      closeSync(fd);
    }
  });
}

/** Removes `dependent` from the base's lxc_snapshots, and the file with its last entry. Quiet when it is not there. */
export function removeDependent(baseDir: string, dependent: Dependent): void {
  if (!existsSync(snapshotsFile(baseDir))) return;
  withLxcLock(baseDir, () => {
    const parsed = parseSnapshots(readSnapshots(baseDir));
    if ('count' in parsed) {
      if (parsed.count > 0) writeFileAtomic(snapshotsFile(baseDir), `${parsed.count - 1}\n`);
      return;
    }
    // Whole entries, compared as pairs (LXC's own removal matches a substring, which can cut another lxcpath's entry).
    const kept = parsed.entries.filter((entry) => !same(entry, dependent));
    if (kept.length === parsed.entries.length) return;
    if (kept.length === 0) rmSync(snapshotsFile(baseDir), { force: true });
    else writeFileAtomic(snapshotsFile(baseDir), formatSnapshots(kept));
  });
}

/**
 * Runs `work` holding LXC's own lock on the container at `containerDir` (lxc-copy -s holds it while it adds a line,
 * lxc-destroy while it removes one). Without perl, or on a platform whose struct flock it is not packed for, thin-lxc's
 * writers still exclude each other through flock(2) on the same file.
 */
function withLxcLock<T>(containerDir: string, work: () => T): T {
  const path = lxcLockPath(containerDir);
  if (holdsAlongside(path)) return work();
  const fd = openOfdLockFile(path);
  try {
    let taken;
    try {
      taken = ofdLockWait(fd, 20, TIMED_OUT);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      taken = null; // no perl
    }
    taken ??= flockWait(fd, '20', TIMED_OUT);
    if (taken.exitCode === TIMED_OUT) throw new UserError(lxcLockTimedOut(containerDir, path));
    if (taken.exitCode !== 0) throw new UserError(`cannot take LXC's lock ${path}: ${taken.stderr.trim() || `exit code ${taken.exitCode}`}`);
    return work();
  } finally {
    closeSync(fd);
  }
}

function lxcLockPath(containerDir: string): string {
  return join(LXC_LOCK_DIR, dirname(containerDir), `.${basename(containerDir)}`);
}

function lxcLockTimedOut(containerDir: string, path: string): string {
  return `timed out after 20 s waiting for LXC's lock on ${containerDir} (${path}): is an lxc-copy or lxc-destroy of it hanging?`;
}

/** LXC's lock on a container, for withLock to take beside its own (core/lock.ts): addDependent and removeDependent then run in it. */
export function lxcLockAlongside(containerDir: string): AlongsideLock {
  const path = lxcLockPath(containerDir);
  return { path, timedOut: lxcLockTimedOut(containerDir, path) };
}

/** Lets go of LXC's lock on a container taken with lxcLockAlongside, once what needed it is written; quiet when not held. */
export function releaseLxcLockAlongside(containerDir: string): void {
  releaseAlongside(lxcLockPath(containerDir));
}
