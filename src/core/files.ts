// Writes a file so that a reader sees the old content or the new, never half of it.
import { readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isAlive } from './exec.js';

/**
 * The new content goes to a hidden file beside it first: a directory reader that skips dotfiles, as
 * dnsmasq does in its dhcp-hostsdir, never sees it, even if the writer is killed before the rename.
 */
export function writeFileAtomic(path: string, content: string, mode = 0o644): void {
  const temporary = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  writeFileSync(temporary, content, { mode });
  renameSync(temporary, path);
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
