// The union mount that makes a thin container's rootfs: planned as plain data, mounted by the pre-mount hook.
import { chownSync, existsSync, mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import { release } from 'node:os';
import { mount as runMount, unmountLazy } from '../core/commands.js';
import { UserError } from '../core/errors.js';
import { canonicalPath, parseMountPoints } from '../core/files.js';
import { type IdMap, mountIdmapped, shiftUp } from './idmap.js';

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
export function memoryLayer(dir: string, size: string, owner = 0): { upper: string; work: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const result = runMount('tmpfs', `size=${size},mode=0755`, MOUNT_SOURCE, dir);
  if (result.exitCode !== 0) {
    throw new UserError(`cannot mount a ${size} tmpfs on ${dir} (${result.stderr.trim().split('\n').at(-1)}): is the size valid and is there memory to spare?`);
  }
  const layer = { upper: `${dir}/upper`, work: `${dir}/work` };
  mkdirSync(layer.upper, { mode: 0o755 });
  mkdirSync(layer.work, { mode: 0o755 });
  // An unprivileged container's root owns its rootfs' top directory, as it owns the write layer on disk.
  if (owner !== 0) chownSync(layer.upper, owner, owner);
  return layer;
}

/**
 * Mounts the union on the container's rootfs mount point; run inside the container's mount namespace.
 * The mount loads the filesystem's module if need be, so nothing is checked beforehand.
 */
export function mountUnion(mount: UnionMount, { nodev = false } = {}): void {
  requireLayers(mount);
  mkdirSync(mount.work, { recursive: true });
  const result = runMount(mount.fs, `${mountOptions(mount)}${nodev ? ',nodev' : ''}`, MOUNT_SOURCE, mount.target);
  if (result.exitCode !== 0) {
    const reason = result.stderr.trim().split('\n').at(-1) ?? `exit code ${result.exitCode}`;
    if (/unknown filesystem type/.test(reason)) {
      throw new UserError(`${mount.fs} is not available in this kernel (${reason}): ${mount.fs === 'aufs' ? 'recreate the container with --fs overlay' : 'use a kernel with overlayfs'}`);
    }
    throw new UserError(`cannot mount the ${mount.fs} union on ${mount.target} (${reason}): is the write layer ${mount.upper} on a writable filesystem with room to spare?`);
  }
}

function requireLayers(mount: UnionMount): void {
  for (const layer of mount.layers) {
    if (!existsSync(layer)) {
      throw new UserError(
        `base layer ${layer} is gone: the base container was destroyed or moved; recreate it, or destroy this thin container`,
      );
    }
  }
  if (!existsSync(mount.upper)) throw new UserError(`write layer ${mount.upper} is missing: this thin container is damaged`);
}

/** How an unprivileged container's union sees its layers. */
export interface LayerMapping {
  map: IdMap;
  /** Layers stored in the map already (an unprivileged thin base's write layer): used as they are. */
  shifted: readonly string[];
  /** A directory of mount points for the idmapped clones of the other layers, in the container's directory. */
  staging: string;
}

/**
 * An unprivileged container's union, mounted by its pre-start hook as host root in its monitor's own mount
 * namespace (lxc.monitor.unshare): LXC copies it into the container's namespace, the host never sees it, and the
 * kernel takes it away when the monitor exits, however it ends. Each layer stored unshifted is shown through a
 * read-only idmapped clone (owned by the container's root and ids above it), overlayfs stacks the clones (it takes
 * idmapped lower layers since Linux 5.19) and the write layer, which is stored shifted on disk. Neither the clones
 * nor the union open device nodes (nodev). Run after clearMonitorNamespace.
 */
export function mountMappedUnion(mount: UnionMount, mapping: LayerMapping): void {
  requireLayers(mount);
  mkdirSync(mount.work, { recursive: true });
  mkdirSync(mapping.staging, { recursive: true, mode: 0o700 });
  const clones = mount.layers.map((layer, index) => (mapping.shifted.includes(layer) ? null : { source: layer, target: `${mapping.staging}/${index}` }));
  const pairs = clones.filter((pair) => pair !== null);
  for (const pair of pairs) mkdirSync(pair.target, { recursive: true, mode: 0o700 });
  mountIdmapped(shiftUp(mapping.map), pairs);
  // nodev: host root mounts it, so the kernel would open the base's device nodes (a Debian base's /dev/console is
  // the host's) for root inside, which LXC's own unprivileged rootfs, mounted in the user namespace, never allows.
  mountUnion({ ...mount, layers: mount.layers.map((layer, index) => clones[index]?.target ?? layer) }, { nodev: true });
}

/**
 * Unmounts every mount under `dir` in this mount namespace, the newest first (those stacked on or inside
 * another): at an unprivileged container's stop and before its reboot's mounts, in its monitor's namespace.
 * Quiet when there are none.
 */
export function releaseMounts(dir: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): void {
  // mountinfo names mount points by their real paths: a root given through a symlink must not hide them.
  const real = canonicalPath(dir);
  for (const target of mountsUnder(real, mountinfo).reverse()) {
    const result = unmountLazy(target);
    if (result.exitCode !== 0 && mountsUnder(real, readFileSync('/proc/self/mountinfo', 'utf8')).includes(target)) {
      throw new UserError(`cannot unmount ${target} (${result.stderr.trim().split('\n').at(-1)}): stop the container with lxc-stop -k and start it again`);
    }
  }
}

/** The mount points at or below `dir`, in mountinfo's order (a mount comes after the one it is on). */
export function mountsUnder(dir: string, mountinfo: string): string[] {
  return parseMountPoints(mountinfo).filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/**
 * Before an unprivileged container's mounts: refuses the host's own mount namespace (mounts there would show on the
 * host and outlive the container; the pre-start hook runs in one of the monitor's own only with
 * lxc.monitor.unshare = 1), and unmounts what a previous boot of the same monitor left (an LXC reboot).
 */
export function clearMonitorNamespace(containerDir: string): void {
  requirePrivateNamespace();
  releaseMounts(containerDir);
}

/**
 * At an unprivileged container's stop (post-stop, in its monitor's namespace): its union goes now, not with the
 * monitor, so that the ephemeral hook can remove its directory and a reboot starts clean. Nothing in the host's.
 */
export function releaseMonitorMounts(containerDir: string): void {
  if (!inHostNamespace()) releaseMounts(containerDir);
}

/**
 * The host's mount namespace is init's; where a security module keeps a hook from reading init's (some sandboxes
 * do, from another namespace), kthreadd's, which is the kernel's first. False when neither can be read.
 */
function inHostNamespace(): boolean {
  const own = readlinkSync('/proc/self/ns/mnt');
  for (const pid of [1, 2]) {
    try {
      return readlinkSync(`/proc/${pid}/ns/mnt`) === own;
    } catch {
      // Not readable from here: the next.
    }
  }
  return false;
}

function requirePrivateNamespace(): void {
  if (inHostNamespace()) {
    throw new UserError(`the mount hook runs in the host's mount namespace: keep lxc.monitor.unshare = 1 in the container's config, as templates/config.hbs has it`);
  }
}
