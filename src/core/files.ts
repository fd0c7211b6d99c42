// Writing files so that a reader sees the old content or the new, never half of it, and removing trees without
// ever crossing into another mount.
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
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
export function settleStaged(paths: readonly string[], tag: string): void {
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
    if (isAlive(pid)) continue;
    const staged = paths.map((path) => ({ path, temporary: stagedName(path, tag, pid) })).filter(({ temporary }) => existsSync(temporary));
    if (staged[0]?.path !== paths[0]) for (const { temporary, path } of staged) renameSync(temporary, path);
    else for (const { temporary } of staged.reverse()) rmSync(temporary, { force: true });
  }
}

/** Removes what writers of `path` that were killed mid-write left beside it. */
export function removeStaleTemporaries(path: string): void {
  const prefix = `.${basename(path)}.tmp-`;
  let entries: string[];
  try {
    entries = readdirSync(dirname(path));
  } catch {
    return;
  }
  for (const entry of entries) {
    if (entry.startsWith(prefix) && !isAlive(Number(entry.slice(prefix.length)))) rmSync(join(dirname(path), entry), { force: true });
  }
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
 * the mount table is read too), and never follows a symlink (it is unlinked). A mount point below it refuses the
 * removal before anything goes, naming it; one that appears meanwhile is left in place, and the error names it.
 * `what` says whose directory it is, for the message.
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
  const skipped: string[] = [];
  removeBelow(path, top.dev, skipped);
  if (skipped.length > 0) {
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

function removeBelow(path: string, device: number, skipped: string[]): void {
  let stat;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!stat.isDirectory()) {
    unlinkSync(path);
    return;
  }
  // Another filesystem. A bind mount of this same one made after the mount table was read has this device too, and
  // is only caught at its rmdir (EBUSY), after its files: the table is read once, not per directory, for speed.
  if (stat.dev !== device) {
    skipped.push(path);
    return;
  }
  for (const entry of readdirSync(path)) removeBelow(join(path, entry), device, skipped);
  try {
    rmdirSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    // A bind mount of the same filesystem that appeared after the mount table was read: busy, and left alone.
    if (code === 'EBUSY') {
      skipped.push(path);
      return;
    }
    if (code === 'ENOTEMPTY' && skipped.some((inner) => inner.startsWith(`${path}/`))) return;
    throw error;
  }
}
