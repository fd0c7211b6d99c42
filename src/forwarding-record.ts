// thin-lxc's record of whose forwarding is installed: one empty file per container tag in
// /run/thin-lxc/forwarding, on tmpfs like the rules themselves, so both are gone after a reboot.
// Written only under the iptables lock, after iptables-restore succeeded; the rules stay the truth
// (see quickInstallScript for what happens when the record is wrong).
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOCK_DIR } from './lock.js';

const RECORD_DIR = join(LOCK_DIR, 'forwarding');

export function recordedTags(): string[] {
  try {
    return readdirSync(RECORD_DIR);
  } catch {
    return [];
  }
}

export function recordInstalled(tag: string): void {
  mkdirSync(RECORD_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(join(RECORD_DIR, tag), '');
}

export function recordRemoved(tag: string): void {
  rmSync(join(RECORD_DIR, tag), { force: true });
}

/** After a reconcile from iptables-save: the record becomes exactly what is installed. */
export function recordExactly(tags: readonly string[]): void {
  const keep = new Set(tags);
  for (const tag of recordedTags()) if (!keep.has(tag)) recordRemoved(tag);
  for (const tag of tags) recordInstalled(tag);
}
