// The union mount that makes a thin container's rootfs: planned as plain data, mounted by the pre-mount hook.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { mount as runMount } from '../core/commands.js';
import { UserError } from '../core/errors.js';

export type UnionFs = 'overlay' | 'aufs';
export const UNION_FILESYSTEMS: readonly UnionFs[] = ['overlay', 'aufs'];

/** Shown as the mount's source in /proc/mounts, so thin-lxc's mounts are easy to tell apart. */
export const MOUNT_SOURCE = 'thin-lxc';

export interface UnionMount {
  fs: UnionFs;
  /** Read-only layers, top first. */
  layers: readonly string[];
  upper: string;
  work: string;
  target: string;
}

export function mountOptions(mount: UnionMount): string {
  if (mount.fs === 'overlay') {
    return `lowerdir=${mount.layers.join(':')},upperdir=${mount.upper},workdir=${mount.work}`;
  }
  // AuFS: one writable branch on top, read-only branches below it; '+wh' lets a middle branch hide files.
  const lowers = mount.layers.map((layer, index) => `${layer}=${index === mount.layers.length - 1 ? 'ro' : 'ro+wh'}`);
  return `br=${[`${mount.upper}=rw`, ...lowers].join(':')}`;
}

/** A read-only union of `layers` (top first, at least two): what the container sees, for copying it. */
export function readOnlyOptions(fs: UnionFs, layers: readonly string[]): string {
  return fs === 'overlay' ? `lowerdir=${layers.join(':')}` : `br=${layers.map((layer) => `${layer}=ro+wh`).join(':')},ro`;
}

/** Filesystems the running kernel has registered, from /proc/filesystems. */
export function kernelFilesystems(procFilesystems: string): Set<string> {
  return new Set(
    procFilesystems
      .split('\n')
      .map((line) => line.trim().split(/\s+/).at(-1) ?? '')
      .filter((name) => name !== ''),
  );
}

/**
 * 'loaded': the kernel has it. 'module': a module the first mount loads (right after a reboot overlay is
 * not in /proc/filesystems yet on Debian and Ubuntu). 'absent': neither, or there is no module tree for
 * this kernel (/lib/modules/RELEASE) to load it from.
 */
export type KernelSupport = 'loaded' | 'module' | 'absent';

export function kernelSupport(fs: UnionFs, procFilesystems: string, modulesDep: string | null): KernelSupport {
  if (kernelFilesystems(procFilesystems).has(fs)) return 'loaded';
  // modules.dep lines start with the module's path: kernel/fs/overlayfs/overlay.ko.xz: ...
  return modulesDep !== null && new RegExp(`^\\S*/${fs}\\.ko(\\.[a-z]+)?:`, 'm').test(modulesDep) ? 'module' : 'absent';
}

export function readKernelSupport(fs: UnionFs): KernelSupport {
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return null;
    }
  };
  return kernelSupport(fs, read('/proc/filesystems') ?? '', read(`/lib/modules/${release()}/modules.dep`));
}

/** Refuses only a filesystem the kernel cannot have: one that is merely not loaded yet is loaded by the mount. */
export function requireKernelSupport(fs: UnionFs, support = readKernelSupport(fs)): void {
  if (support !== 'absent') return;
  const fix = fs === 'aufs' ? 'use the default --fs overlay, or a kernel built with AuFS' : 'use a kernel with overlayfs (3.18 or later)';
  throw new UserError(`${fs} is not available in this kernel (neither loaded nor among its modules): ${fix}`);
}

/**
 * A tmpfs for a --tmpfs container's write layer, mounted at `dir` (inside the container's mount namespace,
 * so the host never sees it and it goes when the container stops), with overlayfs' upper and work inside.
 */
export function memoryLayer(dir: string, size: string): { upper: string; work: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const result = runMount('tmpfs', `size=${size},mode=0755`, MOUNT_SOURCE, dir);
  if (result.exitCode !== 0) {
    throw new UserError(`cannot mount a ${size} tmpfs on ${dir} (${result.stderr.trim().split('\n').at(-1)}): is the size valid and is there memory to spare?`);
  }
  const layer = { upper: `${dir}/upper`, work: `${dir}/work` };
  mkdirSync(layer.upper, { mode: 0o755 });
  mkdirSync(layer.work, { mode: 0o755 });
  return layer;
}

/**
 * Mounts the union on the container's rootfs mount point; run inside the container's mount namespace.
 * The mount loads the filesystem's module if need be, so nothing is checked beforehand.
 */
export function mountUnion(mount: UnionMount): void {
  for (const layer of mount.layers) {
    if (!existsSync(layer)) {
      throw new UserError(
        `base layer ${layer} is gone: the base container was destroyed or moved; recreate it, or destroy this thin container`,
      );
    }
  }
  if (!existsSync(mount.upper)) throw new UserError(`write layer ${mount.upper} is missing: this thin container is damaged`);
  mkdirSync(mount.work, { recursive: true });
  const result = runMount(mount.fs, mountOptions(mount), MOUNT_SOURCE, mount.target);
  if (result.exitCode !== 0) {
    const reason = result.stderr.trim().split('\n').at(-1) ?? `exit code ${result.exitCode}`;
    if (/unknown filesystem type/.test(reason)) {
      throw new UserError(`${mount.fs} is not available in this kernel (${reason}): ${mount.fs === 'aufs' ? 'recreate the container with --fs overlay' : 'use a kernel with overlayfs'}`);
    }
    throw new UserError(`cannot mount the ${mount.fs} union on ${mount.target} (${reason}): is the write layer ${mount.upper} on a writable filesystem with room to spare?`);
  }
}
