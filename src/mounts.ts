// Bind mounts of host files and folders into a thin container, as lxc.mount.entry lines.
import { statSync } from 'node:fs';
import { UserError } from './errors.js';
import { formatMount, parseMount, quote, type BindMount } from './validate.js';

export interface MountEntry {
  /** Host path, fstab-escaped. */
  source: string;
  /** Container path relative to the rootfs, fstab-escaped. */
  target: string;
  /** bind, create=dir|file so LXC makes the mount point (in the write layer, never the base), and ro. */
  options: string;
}

/** LXC reads mount entries like fstab lines: white space and backslashes are written as octal escapes. */
export function fstabEscape(path: string): string {
  return path.replace(/[\\ \t]/g, (char) => `\\${char.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export function mountEntry(mount: BindMount, isDirectory: boolean): MountEntry {
  const options = ['bind', `create=${isDirectory ? 'dir' : 'file'}`, ...(mount.readOnly ? ['ro'] : [])].join(',');
  return { source: fstabEscape(mount.host), target: fstabEscape(mount.container.slice(1)), options };
}

/** Parses and checks `-m` values: the host path must exist; the container path cannot be the root. */
export function planMounts(specs: readonly string[], cwd: string): { mounts: BindMount[]; entries: MountEntry[] } {
  const mounts = specs.map((spec) => parseMount(spec, cwd));
  const entries = mounts.map((mount) => {
    if (mount.container === '/') throw new UserError(`mount ${quote(formatMount(mount))}: cannot mount over the container's root; choose a path like /app`);
    let isDirectory: boolean;
    try {
      isDirectory = statSync(mount.host).isDirectory();
    } catch {
      throw new UserError(`mount ${quote(formatMount(mount))}: host path ${mount.host} does not exist; create it first`);
    }
    return mountEntry(mount, isDirectory);
  });
  return { mounts, entries };
}
