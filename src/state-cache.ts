// Parsed thin-lxc.ini files of one root, kept in <root>/.thin-lxc-states.json under each file's
// identity (inode, size, ctime). Reading and parsing every state is what made create grow with the
// number of containers (~30 ms for 200 here; an lstat of each is ~1 ms): a state is read again when its
// file is not the one cached. create writes a state once, by renaming a new directory into place, and
// nothing rewrites it, so a changed file always has a new identity.
import { lstatSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ThinState } from './container.js';

const CACHE_FILE = '.thin-lxc-states.json';
/** Bump when ThinState or parseState changes: a cache of another format is ignored. */
const FORMAT = 2;

export type StateCache = Map<string, { identity: string; state: ThinState }>;

/** What changes whenever a file is replaced or written: ctime cannot be set back by a user. */
export function fileIdentity(path: string): string {
  const stat = lstatSync(path);
  if (!stat.isFile()) throw new Error(`${path} is not a regular file`);
  return `${stat.ino}:${stat.size}:${stat.ctimeMs}`;
}

export function loadStateCache(root: string): StateCache {
  try {
    const saved = JSON.parse(readFileSync(join(root, CACHE_FILE), 'utf8')) as { format?: unknown; entries?: unknown };
    if (saved.format !== FORMAT || !Array.isArray(saved.entries)) return new Map();
    return new Map(saved.entries as [string, { identity: string; state: ThinState }][]);
  } catch {
    return new Map();
  }
}

/**
 * Best effort: a user without write access to the root (list as non-root) just parses next time too.
 * A root with no containers keeps no cache, so that it is left as empty as it was found.
 */
export function saveStateCache(root: string, cache: StateCache): void {
  const path = join(root, CACHE_FILE);
  const staging = `${path}.${process.pid}`;
  try {
    if (cache.size === 0) {
      rmSync(path, { force: true });
      return;
    }
    writeFileSync(staging, JSON.stringify({ format: FORMAT, entries: [...cache] }), { mode: 0o644 });
    renameSync(staging, path);
  } catch {
    // Nothing is lost: the states themselves are the truth.
  }
}

/** After a destroy: its entry goes, and with the last one the file, so an emptied root is empty. */
export function forgetState(root: string, id: string): void {
  const cache = loadStateCache(root);
  if (cache.delete(id)) saveStateCache(root, cache);
}
