// Who may reach a thin container's directory. Its write layer holds what root inside made: setuid programs, keys,
// a shell a privileged container's root left owned by host root. lxc-create closes LXC's own container directories
// (0770) for the same reason.
import { chmodSync, chownSync, lstatSync } from 'node:fs';
import { parseIdMap } from '../union/idmap.js';

/**
 * The mode and owner a container directory should have: root's alone (0700), or for an unprivileged container also
 * searchable, not listable, by its own root's group, because LXC opens the rootfs below it as that root (0710).
 */
export function directoryAccess(idmap: string | null): { mode: number; gid: number } {
  return idmap === null ? { mode: 0o700, gid: 0 } : { mode: 0o710, gid: parseIdMap(idmap).host };
}

/** Whether `dir` has its access already (a symlink counts as closed: a container directory is never one, and it is left alone). */
export function isClosed(dir: string, idmap: string | null): boolean {
  const { mode, gid } = directoryAccess(idmap);
  const now = lstatSync(dir);
  return !now.isDirectory() || ((now.mode & 0o7777) === mode && now.uid === 0 && now.gid === gid);
}

/** Gives `dir` its access: the owner first, so that it is never open to the new group with the old mode. */
export function closeDirectory(dir: string, idmap: string | null): void {
  if (isClosed(dir, idmap)) return;
  const { mode, gid } = directoryAccess(idmap);
  chmodSync(dir, 0o700);
  chownSync(dir, 0, gid);
  chmodSync(dir, mode);
}
