// Writing files so that a reader sees the old content or the new, never half of it, and removing trees without
// ever crossing into another mount.
import { closeSync, constants, existsSync, fstatSync, lstatSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from './errors.js';
import { isAlive } from './exec.js';

/**
 * The new content goes to a hidden file beside it first: a directory reader that skips dotfiles, as
 * dnsmasq does in its dhcp-hostsdir, never sees it, even if the writer is killed before the rename.
 */
export function writeFileAtomic(path: string, content: string, mode = 0o644): void {
  stageFiles([{ path, content, mode }]).commit();
}

/**
 * Writes each file's new content beside it, to be renamed into place by commit() or removed by discard(): a write
 * that fails (a full disk) removes what it staged and leaves every file as it was. `tag` names the temporaries
 * (`.NAME.TAG-PID`): files staged together under a tag of their own can be told from other writers' by
 * settleStaged.
 */
export function stageFiles(files: readonly { path: string; content: string; mode: number }[], tag = 'tmp'): { commit(): void; discard(): void } {
  const staged: { temporary: string; path: string }[] = [];
  // The last staged first: a writer killed while discarding never leaves a later file's temporary without an
  // earlier one's, which settleStaged takes for a commit under way.
  const discard = () => {
    for (const { temporary } of staged.splice(0).reverse()) rmSync(temporary, { force: true });
  };
  try {
    for (const { path, content, mode } of files) {
      const temporary = stagedName(path, tag, process.pid);
      staged.push({ temporary, path });
      writeFileSync(temporary, content, { mode });
    }
  } catch (error) {
    discard();
    throw error;
  }
  return {
    commit: () => {
      for (const { temporary, path } of staged.splice(0)) renameSync(temporary, path);
    },
    discard,
  };
}

function stagedName(path: string, tag: string, pid: number): string {
  return join(dirname(path), `.${basename(path)}.${tag}-${pid}`);
}

/**
 * Finishes or undoes what writers of `paths` (staged together, in this order, by stageFiles(..., tag)) left when
 * they were killed. commit() renames the files in order, and only once all were staged; discard() removes the
 * temporaries last first. So a dead writer whose first file's temporary is gone while a later one's is there was
 * killed in commit(), after the first rename: the rest are renamed into place, as it would have. Otherwise none
 * was renamed: its temporaries are removed (last first, so that this, killed too, leaves the same). A live
 * writer's are left to it. The caller holds what serialises the files' writers.
 */
export function settleStaged(paths: readonly string[], tag: string, isWriterAlive: (pid: number) => boolean = isAlive): boolean {
  let rolledForward = false;
  const pids = new Set<number>();
  for (const path of paths) {
    const prefix = `.${basename(path)}.${tag}-`;
    let entries: string[];
    try {
      entries = readdirSync(dirname(path));
    } catch {
      continue;
    }
    for (const entry of entries) if (entry.startsWith(prefix) && /^\d+$/.test(entry.slice(prefix.length))) pids.add(Number(entry.slice(prefix.length)));
  }
  for (const pid of pids) {
    if (isWriterAlive(pid)) continue;
    const staged = paths.map((path) => ({ path, temporary: stagedName(path, tag, pid) })).filter(({ temporary }) => existsSync(temporary));
    if (staged[0]?.path !== paths[0]) {
      for (const { temporary, path } of staged) renameSync(temporary, path);
      rolledForward ||= staged.length > 0;
    } else for (const { temporary } of staged.reverse()) rmSync(temporary, { force: true });
  }
  return rolledForward;
}

/** Removes what writers of `path` that were killed mid-write left beside it (stageFiles' default tag, one file each). */
export function removeStaleTemporaries(path: string): void {
  settleStaged([path], 'tmp');
}

/**
 * The path as the kernel names it (mountinfo, a loop device's backing_file), symlinks resolved: a root may be given
 * through one (/containers -> /srv/containers). The path as given when it cannot be resolved (gone meanwhile).
 */
export function canonicalPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Mount points at or below `dir` (as the kernel names them, after symlinks in `dir` are resolved), from /proc/self/mountinfo. */
export function mountPointsUnder(dir: string): string[] {
  let top: string;
  try {
    top = realpathSync(dir);
  } catch {
    return [];
  }
  const prefix = top === '/' ? '/' : `${top}/`;
  const points = parseMountPoints(readFileSync('/proc/self/mountinfo', 'utf8'));
  return [...new Set(points.filter((point) => point === top || point.startsWith(prefix)))].sort();
}

/** The mount points of a mountinfo text: field 5, with space, tab, newline and backslash written as octal escapes. */
export function parseMountPoints(mountinfo: string): string[] {
  return mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((field): field is string => field !== undefined)
    .map(unescapeMountField);
}

/** A path field of /proc/self/mountinfo as it is: the kernel writes space, tab, newline and backslash as octal escapes. */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Removes `path` and everything below it the way LXC's lxc_rmdir_onedev does, but refusing up front: it never
 * descends into another filesystem or a mount point (a bind mount of the same filesystem has the same device, so
 * the mount table is read too, and each directory's mount is checked as it is opened), and never follows a symlink
 * (it is unlinked). A mount point below it refuses the removal before anything goes, naming it; one that appears
 * meanwhile is left in place, and the error names it. `what` says whose directory it is, for the message.
 * Below `path`, whoever owns a write layer's files (an unprivileged container's ids on the host) may rename them
 * while root removes them: the walk goes by open directories (see removeEntry), never by a path looked up again.
 */
export function removeTreeOnDevice(path: string, what: string): void {
  let top;
  try {
    top = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!top.isDirectory()) {
    unlinkSync(path);
    return;
  }
  refuseMountsUnder(path, what);
  // `path` itself is named by thin-lxc (its parents are root's): its mount is the one the walk keeps to.
  const fd = openSync(path, DIRECTORY);
  let walk: Walk;
  try {
    walk = { mount: mountOf(fd), skipped: [], what, top: path };
  } finally {
    closeSync(fd);
  }
  removeEntry(path, path, walk);
  if (walk.skipped.length > 0) {
    const skipped = walk.skipped;
    throw new UserError(`${skipped.join(', ')} became a mount point while ${what} was being removed: it and its folders are left; unmount it (umount ${skipped.join(' ')}) and remove ${path}`);
  }
}

/** Refuses, before anything is removed, a tree that has a mount point in it (or is one). */
export function refuseMountsUnder(path: string, what: string): void {
  const mounts = mountPointsUnder(path);
  if (mounts.length === 0) return;
  const one = mounts.length === 1;
  throw new UserError(
    `${mounts.join(', ')} ${one ? 'is a mount point' : 'are mount points'} inside ${what}, which thin-lxc never removes across: ` +
      `unmount ${one ? 'it' : 'them'} (umount ${mounts.join(' ')}), then try again; nothing was removed`,
  );
}

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;
const DIRECTORY = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

interface Walk {
  /** The filesystem and the mount the walk keeps to. */
  mount: { dev: number; id: string | null };
  /** Mount points met, left in place. */
  skipped: string[];
  what: string;
  top: string;
}

/** An open directory's device, and its mount's id (fdinfo's mnt_id, Linux 3.15+): a bind mount of the same filesystem has another. */
function mountOf(fd: number): Walk['mount'] {
  let id: string | null = null;
  try {
    id = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? null;
  } catch {
    // No fdinfo: the device, and a same-filesystem bind mount's EBUSY at its rmdir, are all there is to go by.
  }
  return { dev: fstatSync(fd).dev, id };
}

/** A name that changed under the walk this many times (a directory swapped for a symlink and back...) is given up on. */
const ATTEMPTS = 3;

/** Folders nested deeper than this are not walked (see removeEntry). */
const MAX_DEPTH = 2000;

/**
 * Removes one entry. `at` is how the system calls reach it: `/proc/self/fd/<its directory's descriptor>/<name>`
 * below the top, so that only the last component is looked up, in the directory actually opened (Node has no
 * unlinkat or openat: this is core/beneath.ts's way), and unlink, rmdir and an O_NOFOLLOW open never follow it.
 * A directory swapped for a symlink after any check is then a symlink that is unlinked, and the directory
 * already opened, wherever it was renamed to, is the one emptied. `shown` is the path for messages.
 */
function removeEntry(at: string | Buffer, shown: string, walk: Walk, attempt = 1, depth = 0): void {
  // Most entries are files: one unlink, no lstat; a directory refuses it (EISDIR).
  try {
    unlinkSync(at);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    // A file bind-mounted over since the mount table was read: left alone.
    if (code === 'EBUSY') {
      walk.skipped.push(shown);
      return;
    }
    if (code !== 'EISDIR') throw named(error, at, shown);
  }
  let fd: number;
  try {
    fd = openSync(at, DIRECTORY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    // No longer a directory (ELOOP: a symlink now): unlinked as what it is now.
    if (code === 'ELOOP' || code === 'ENOTDIR') return again(at, shown, walk, attempt, depth);
    throw named(error, at, shown);
  }
  try {
    // Another filesystem, or a bind mount (of this same one too) made after the mount table was read: its files are not ours.
    const mount = mountOf(fd);
    if (mount.dev !== walk.mount.dev || (mount.id !== null && walk.mount.id !== null && mount.id !== walk.mount.id)) {
      walk.skipped.push(shown);
      return;
    }
    // One descriptor and a few stack frames a level: a deeper tree (root inside can make one) would end the walk with
    // an error of Node's own.
    if (depth >= MAX_DEPTH) {
      throw new UserError(`${walk.top} has folders nested more than ${MAX_DEPTH} deep, which thin-lxc does not walk: remove it with rm -rf --one-file-system ${walk.top}`);
    }
    // Names as bytes: whoever writes the tree chooses them, and one that is not UTF-8 decoded would name nothing.
    const dir = `/proc/self/fd/${fd}/`;
    for (const name of readdirSync(dir, { encoding: 'buffer' })) removeEntry(Buffer.concat([Buffer.from(dir), name]), `${shown}/${name.toString()}`, walk, 1, depth + 1);
  } finally {
    closeSync(fd);
  }
  try {
    rmdirSync(at);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    // A mount point: without mnt_id, a bind mount of the same filesystem is only caught here, after its files.
    if (code === 'EBUSY') {
      walk.skipped.push(shown);
      return;
    }
    if (code === 'ENOTEMPTY' && walk.skipped.some((inner) => inner.startsWith(`${shown}/`))) return;
    // Written to meanwhile, or the name now something else (the directory emptied was renamed away): looked at again.
    if (code === 'ENOTEMPTY' || code === 'ENOTDIR') return again(at, shown, walk, attempt, depth);
    throw named(error, at, shown);
  }
}

function again(at: string | Buffer, shown: string, walk: Walk, attempt: number, depth: number): void {
  if (attempt >= ATTEMPTS) {
    throw new UserError(`${shown} kept changing while ${walk.what} was being removed: a process on the host writes in it (one with the container's ids?); stop it, then try again`);
  }
  removeEntry(at, shown, walk, attempt + 1, depth);
}

/** A system call's error with the path as the user knows it, not the /proc/self/fd one it was made through. */
function named(error: unknown, at: string | Buffer, shown: string): unknown {
  if (error instanceof Error && at.toString() !== shown) error.message = error.message.split(at.toString()).join(shown);
  return error;
}
