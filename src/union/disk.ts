// A write layer that cannot grow past its size (--disk): which mechanism a root gets (a project quota where its
// filesystem has them, an image per container elsewhere), whether a limit can be reached or promises more than
// is free, and what a write layer uses against its limit. The mechanisms are quota.ts and disk-image.ts.
import { existsSync, readlinkSync, realpathSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../core/errors.js';
import { unescapeMountField } from '../core/files.js';
import { imageAllocated, imageUse } from './disk-image.js';
import { projectUse } from './quota.js';

export type DiskMode = 'quota' | 'image';

/** How a root's containers get their limit: a project quota on the filesystem mounted at mountPoint, or an image each. */
export type DiskMechanism = { mode: 'quota'; mountPoint: string } | { mode: 'image' };

export interface MountInfo {
  mountPoint: string;
  fstype: string;
  /** The filesystem's own options (the super options after ' - '), where quotas show. */
  superOptions: string[];
}

/** /proc/self/mountinfo's lines: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SOURCE SUPEROPTS`. */
export function parseMountInfo(text: string): MountInfo[] {
  return text.split('\n').flatMap((line) => {
    const [left, right] = line.split(' - ');
    const fields = left?.split(' ') ?? [];
    const tail = right?.split(' ') ?? [];
    if (fields.length < 5 || tail.length < 3) return [];
    return [{ mountPoint: unescapeMountField(fields[4]!), fstype: tail[0]!, superOptions: tail[2]!.split(',') }];
  });
}

/** The mount `path` lives on: the last mounted (it covers the earlier ones) of those with the longest mount point over it. */
export function mountOf(mounts: readonly MountInfo[], path: string): MountInfo | undefined {
  const over = (point: string) => point === '/' || path === point || path.startsWith(`${point}/`);
  let found: MountInfo | undefined;
  for (const mount of mounts) {
    if (over(mount.mountPoint) && (!found || mount.mountPoint.length >= found.mountPoint.length)) found = mount;
  }
  return found;
}

/**
 * Project quota where the filesystem enforces it: ext4 mounted with prjquota, xfs with prjquota/pquota
 * (pqnoenforce only counts). Anything else gets an image.
 */
export function diskMechanism(mounts: readonly MountInfo[], path: string): DiskMechanism {
  const mount = mountOf(mounts, path);
  if (!mount) return { mode: 'image' };
  const enforced = mount.fstype === 'ext4' ? ['prjquota'] : mount.fstype === 'xfs' ? ['prjquota', 'pquota'] : [];
  return mount.superOptions.some((option) => enforced.includes(option)) ? { mode: 'quota', mountPoint: mount.mountPoint } : { mode: 'image' };
}

/** The mechanism for a root that may not exist yet: judged on its nearest existing folder, symlinks resolved. */
export function readDiskMechanism(root: string, mountinfo: string): DiskMechanism {
  let path = root;
  while (!existsSync(path) && dirname(path) !== path) path = dirname(path);
  return diskMechanism(parseMountInfo(mountinfo), realpathSync(path));
}

/**
 * A limit the root's filesystem cannot reach protects nothing: the host's disk fills first (and past 16 TiB ext4
 * cannot even make the image's file). Refused, naming what the filesystem holds.
 */
export function requireReachable(root: string, bytes: number, asked: string): void {
  let path = root;
  while (!existsSync(path) && dirname(path) !== path) path = dirname(path);
  const stat = statfsSync(path);
  const total = stat.blocks * stat.bsize;
  if (bytes > total) throw new UserError(`--disk ${asked} is more than the filesystem under ${root} holds (${binarySize(total)}): give a limit it can reach`);
}

/** A limit and what its container already holds on the host (an image's allocated blocks). */
export interface Room {
  limitBytes: number;
  heldBytes: number;
}

/**
 * Whether limits promise more than the filesystem has: an image is sparse and a quota reserves nothing, so a
 * limit is only a cap. One line to warn with (create and update still do what was asked), or null: first when
 * this limit alone is more than is free now, then when the images of the root together may still grow past it.
 */
export function overcommitWarning(root: string, name: string, asked: string, mine: Room, others: readonly Room[], freeBytes: number): string | null {
  const grows = (room: Room) => Math.max(room.limitBytes - room.heldBytes, 0);
  if (grows(mine) > freeBytes) {
    return `--disk ${asked} is more than the ${binarySize(freeBytes)} free under ${root} now: a limit reserves no space, so ${name} can fill that filesystem before it reaches its limit`;
  }
  const all = others.reduce((sum, room) => sum + grows(room), grows(mine));
  if (all > freeBytes) {
    return `the disk limits under ${root} may still take ${binarySize(all)} in all (each limit less what its container holds), more than the ${binarySize(freeBytes)} free there: together they can fill that filesystem before their limits`;
  }
  return null;
}

/**
 * The warning for a limit of `bytes` on `name` (its image, if it has one yet) among the root's other images, or
 * null: read from the filesystem now (statfs, and each image file's allocated blocks on that filesystem).
 */
export function overcommitOf(root: string, name: string, asked: string, bytes: number, image: string | null, others: readonly { image: string; limitBytes: number }[]): string | null {
  const { freeBytes, device } = freeUnder(root);
  const mine = { limitBytes: bytes, heldBytes: (image === null ? null : imageRoom(image, bytes, device))?.heldBytes ?? 0 };
  return overcommitWarning(root, name, asked, mine, others.flatMap((other) => imageRoom(other.image, other.limitBytes, device) ?? []), freeBytes);
}

/** Free space for anyone (statfs bavail) on the filesystem of a root that may not exist yet, and its device. */
export function freeUnder(root: string): { freeBytes: number; device: number } {
  let path = root;
  while (!existsSync(path) && dirname(path) !== path) path = dirname(path);
  const stat = statfsSync(path);
  return { freeBytes: stat.bavail * stat.bsize, device: statSync(path).dev };
}

/** The room of a container's image: its limit, and the blocks its sparse file holds; null when it is elsewhere or gone. */
export function imageRoom(image: string, limitBytes: number, device: number): Room | null {
  try {
    const stat = statSync(image);
    return stat.dev === device ? { limitBytes, heldBytes: stat.blocks * 512 } : null;
  } catch {
    return null;
  }
}

function binarySize(bytes: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)}${units[unit]}`;
}

export interface DiskUse {
  usedBytes: number | null;
  limitBytes: number;
  /** An image's blocks on the host (its sparse file's allocated size, which never shrinks); null for a quota. */
  hostBytes: number | null;
}

/**
 * What the write layer uses against its limit. An image is read from its superblock when stopped; while it runs
 * (the superblock's counts lag behind a mounted filesystem, and the image is mounted only in the container's
 * namespace) from statfs of the container's root: overlayfs answers with its upper layer's filesystem.
 */
export function diskUse(
  disk: { disk: string | null; diskMode: DiskMode | null; diskProject: string | null; diskMount: string | null },
  image: string,
  runningPid: string | null,
): DiskUse | null {
  if (disk.disk === null || disk.diskMode === null) return null;
  const limitBytes = Number(disk.disk);
  if (disk.diskMode === 'quota') {
    const use = disk.diskMount === null ? null : projectUse(disk.diskMount, Number(disk.diskProject));
    return { usedBytes: use?.usedBytes ?? null, limitBytes, hostBytes: null };
  }
  const parsed = runningPid === null ? imageUse(image) : rootUse(runningPid);
  return { usedBytes: parsed?.usedBytes ?? null, limitBytes, hostBytes: imageAllocated(image) };
}

function rootUse(pid: string): { usedBytes: number; sizeBytes: number } | null {
  try {
    // The container stopped since LXC gave the pid, and a host process got it: its root is the host's, not the image.
    if (readlinkSync(`/proc/${pid}/ns/mnt`) === readlinkSync('/proc/self/ns/mnt')) return null;
    const stat = statfsSync(`/proc/${pid}/root`);
    return { usedBytes: (stat.blocks - stat.bfree) * stat.bsize, sizeBytes: stat.blocks * stat.bsize };
  } catch {
    return null;
  }
}
