// Files under a directory whose content someone else controls (a container's write layer, a rootfs copied from
// one), read and written by root on the host without ever following a symlink: each path component is opened
// relative to the directory opened before it, with O_NOFOLLOW. Node has no openat(2), but a path through
// /proc/self/fd/<dirfd>/ starts its lookup at that open directory, and only its last component is then looked
// up, so a symlink swapped in anywhere after the check cannot lead elsewhere.
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, type Stats, writeSync, ftruncateSync } from 'node:fs';

const { O_RDONLY, O_WRONLY, O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;
const DIRECTORY = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

/** A path component is a symlink, or not a directory where one must be: what the caller may not go through. */
export class BlockedPath extends Error {
  constructor(root: string, relative: string) {
    super(`${root}/${relative} goes through a symlink or a non-directory`);
  }
}

function componentsOf(relative: string): string[] {
  const parts = relative.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw new BlockedPath('', relative);
  return parts;
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** Runs `work` on the open directory root/dirs, or returns null when some component does not exist. */
function inDirectory<T>(root: string, relative: string, dirs: readonly string[], work: (fd: number) => T): T | null {
  let fd: number;
  try {
    fd = openSync(root, DIRECTORY);
  } catch (error) {
    if (code(error) === 'ENOENT') return null;
    throw error;
  }
  try {
    for (const part of dirs) {
      let next: number;
      try {
        next = openSync(`/proc/self/fd/${fd}/${part}`, DIRECTORY);
      } catch (error) {
        if (code(error) === 'ENOENT') return null;
        if (code(error) === 'ELOOP' || code(error) === 'ENOTDIR') throw new BlockedPath(root, relative);
        throw error;
      }
      closeSync(fd);
      fd = next;
    }
    return work(fd);
  } finally {
    closeSync(fd);
  }
}

/** The entry at root/relative itself (a symlink is reported, not followed); null when it does not exist. */
export function lstatBeneath(root: string, relative: string): Stats | null {
  const parts = componentsOf(relative);
  const last = parts.pop();
  if (last === undefined) return inDirectory(root, relative, [], (fd) => fstatSync(fd));
  return inDirectory(root, relative, parts, (fd) => {
    try {
      return lstatSync(`/proc/self/fd/${fd}/${last}`);
    } catch (error) {
      if (code(error) === 'ENOENT') return null;
      throw error;
    }
  });
}

/** A regular file's text; null when it does not exist. Refuses (BlockedPath) a symlink or anything else. */
export function readFileBeneath(root: string, relative: string): string | null {
  const parts = componentsOf(relative);
  const last = parts.pop();
  if (last === undefined) throw new BlockedPath(root, relative);
  return inDirectory(root, relative, parts, (dir) => {
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO put there must not hang the command.
      fd = openSync(`/proc/self/fd/${dir}/${last}`, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      if (code(error) === 'ENOENT') return null;
      if (code(error) === 'ELOOP') throw new BlockedPath(root, relative);
      throw error;
    }
    try {
      if (!fstatSync(fd).isFile()) throw new BlockedPath(root, relative);
      return readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  });
}

export interface EntryBeneath {
  name: string;
  /** lstat of the entry: a symlink is a symlink. */
  stat: Stats;
}

/** A directory's entries, sorted, each with its lstat; null when it does not exist. */
export function listBeneath(root: string, relative: string): EntryBeneath[] | null {
  return inDirectory(root, relative, componentsOf(relative), (fd) =>
    readdirSync(`/proc/self/fd/${fd}`)
      .sort()
      .flatMap((name) => {
        try {
          return [{ name, stat: lstatSync(`/proc/self/fd/${fd}/${name}`) }];
        } catch (error) {
          if (code(error) === 'ENOENT') return []; // removed meanwhile
          throw error;
        }
      }),
  );
}

/**
 * Writes a regular file (made with `mode` when new) in an existing directory. Refuses a symlink, a device, a
 * FIFO or anything else that is there instead, and a missing directory.
 */
export function writeFileBeneath(root: string, relative: string, content: string, mode = 0o644): void {
  const parts = componentsOf(relative);
  const last = parts.pop();
  if (last === undefined) throw new BlockedPath(root, relative);
  const done = inDirectory(root, relative, parts, (dir) => {
    const path = `/proc/self/fd/${dir}/${last}`;
    // Checked before opening: opening a device node can itself do something.
    let existing: Stats | null = null;
    try {
      existing = lstatSync(path);
    } catch (error) {
      if (code(error) !== 'ENOENT') throw error;
    }
    if (existing && !existing.isFile()) throw new BlockedPath(root, relative);
    let fd: number;
    try {
      fd = openSync(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, mode);
    } catch (error) {
      if (code(error) === 'ELOOP') throw new BlockedPath(root, relative);
      throw error;
    }
    try {
      if (!fstatSync(fd).isFile()) throw new BlockedPath(root, relative);
      ftruncateSync(fd, 0);
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    return true;
  });
  if (done === null) throw new BlockedPath(root, relative);
}
