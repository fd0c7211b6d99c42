// thin-lxc's record of whose forwarding is installed, and by which start of the container: one file per
// container tag in /run/thin-lxc/forwarding, on tmpfs like the rules themselves, so both are gone after a
// reboot. Written only under the iptables lock. The rules stay the truth: the record only decides whether
// a start or stop may try the quick way, whose scripts check the rules themselves (see quickInstallScript),
// and whether a stop belongs to the start that installed them.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/**
 * The start that installed the tag's forwarding: LXC_PID, its init's pid, which every hook of one run sees.
 * '' when unknown (installed before thin-lxc recorded it, or by a hook run without LXC); null when none is recorded.
 */
export function recordedGeneration(tag: string): string | null {
  try {
    return readFileSync(join(RECORD_DIR, tag), 'utf8').trim();
  } catch {
    return null;
  }
}

export function recordInstalled(tag: string, generation: string): void {
  mkdirSync(RECORD_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(join(RECORD_DIR, tag), generation === '' ? '' : `${generation}\n`);
}

export function recordRemoved(tag: string): void {
  rmSync(join(RECORD_DIR, tag), { force: true });
}

/** After a reconcile from iptables-save: exactly these tags are recorded; the ones already there keep their start. */
export function recordExactly(tags: readonly string[]): void {
  const keep = new Set(tags);
  const recorded = new Set(recordedTags());
  for (const tag of recorded) if (!keep.has(tag)) recordRemoved(tag);
  for (const tag of tags) if (!recorded.has(tag)) recordInstalled(tag, '');
}
