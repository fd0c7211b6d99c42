// A write layer that cannot grow past its size (--disk): a project quota where the root's filesystem has them,
// a sparse ext4 image per container elsewhere. Chosen and planned as plain data; made at create, mounted by
// the mount hook, grown by update, undone at removal as the state records it.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, realpathSync, rmSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  growExt4Image,
  holdLiveMount,
  holdMount,
  loadLoopDriver,
  makeExt4Image,
  mount as runMount,
  projectQuotaReport,
  setProjectLimit,
  setQuotaProject,
} from '../core/commands.js';
import { UserError } from '../core/errors.js';
import { unescapeMountField } from '../core/files.js';

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

/** Project ids thin-lxc picks from: high, away from the small ids people number their own projects with. */
const PROJECT_BASE = 1_000_000_000;
const PROJECT_SPAN = 1_000_000_000;

/**
 * A project id no one uses on the filesystem (repquota lists every id with use or limits) and no thin container
 * recorded: the first free one from a point that the container's directory gives, so that ids spread out.
 */
export function chooseProject(seed: string, taken: ReadonlySet<number>): number {
  const start = createHash('sha256').update(seed).digest().readUInt32BE(0) % PROJECT_SPAN;
  for (let step = 0; step < 1000; step++) {
    const id = PROJECT_BASE + ((start + step) % PROJECT_SPAN);
    if (!taken.has(id)) return id;
  }
  throw new UserError(`no free quota project id near ${PROJECT_BASE + start}: clear unused project quotas (repquota -P)`);
}

export interface ProjectUse {
  usedBytes: number;
  /** 0: no hard limit. */
  hardBytes: number;
}

/** repquota -P -n -p lines: `#ID  --  USED SOFT HARD GRACE  FILES ...`, blocks in KiB. */
export function parseRepquota(text: string): Map<number, ProjectUse> {
  const projects = new Map<number, ProjectUse>();
  for (const line of text.split('\n')) {
    const match = /^#(\d+)\s+[-+]{2}\s+(\d+)\s+(\d+)\s+(\d+)\b/.exec(line.trim());
    if (match) projects.set(Number(match[1]), { usedBytes: Number(match[2]) * 1024, hardBytes: Number(match[4]) * 1024 });
  }
  return projects;
}

/** The ids in use on the filesystem at mountPoint; refuses one that has no project quota on. */
export function projectsInUse(mountPoint: string): Map<number, ProjectUse> {
  const report = projectQuotaReport(mountPoint);
  if (report === null) {
    throw new UserError(`the filesystem at ${mountPoint} is mounted with project quota, but repquota -P cannot read it: is the quota package installed (apt-get install quota)?`);
  }
  return parseRepquota(report);
}

/** KiB for setquota, rounded up: the limit is never below what was asked. */
export function limitKiB(bytes: number): number {
  return Math.ceil(bytes / 1024);
}

/**
 * The inode limit that goes with a block limit: as many inodes as mkfs.ext4 gives an image of that size (its
 * mke2fs.conf ratios: one per 4 KiB below 512 MiB, 16 KiB to 4 TiB, 32 KiB to 16 TiB, 64 KiB above). Without it,
 * empty files, symlinks and directories (no blocks) could use up the host filesystem's fixed inode table.
 */
export function limitInodes(bytes: number): number {
  const ratio = bytes < 512 * 2 ** 20 ? 4096 : bytes < 4 * 2 ** 40 ? 16384 : bytes < 16 * 2 ** 40 ? 32768 : 65536;
  return Math.ceil(bytes / ratio);
}

/** A project's hard limits for `bytes`: blocks and the inodes that go with them (0: none, both cleared). */
export function projectLimit(bytes: number): { hardKiB: number; hardInodes: number } {
  return { hardKiB: limitKiB(bytes), hardInodes: bytes === 0 ? 0 : limitInodes(bytes) };
}

/** Puts the (empty, or with -R filled) write layer and work folder in the project, then limits the project. */
export function limitProject(dirs: readonly string[], mountPoint: string, project: number, bytes: number, recursive = false): void {
  const tagged = setQuotaProject(dirs, project, recursive);
  if (tagged.exitCode !== 0) throw new UserError(`cannot put ${dirs.join(' and ')} in quota project ${project} (${lastLine(tagged.stderr)}): is the filesystem mounted with prjquota?`);
  setLimit(mountPoint, project, bytes);
}

export function setLimit(mountPoint: string, project: number, bytes: number): void {
  const limited = setProjectLimit(mountPoint, project, projectLimit(bytes));
  if (limited.exitCode !== 0) throw new UserError(`cannot limit quota project ${project} on ${mountPoint} (${lastLine(limited.stderr)}): is the quota package installed (apt-get install quota)?`);
}

/** Removal: the project's limit goes (its files go with the directory). Quiet when the filesystem or limit is gone. */
export function clearProject(mountPoint: string, project: number): void {
  setProjectLimit(mountPoint, project, projectLimit(0));
}

/**
 * Makes the image: a sparse file of `bytes` (no block is used until written) holding an ext4 filesystem filled
 * from `from` (the staged upper and work folders). Nothing is mounted.
 */
export function makeImage(image: string, bytes: number, from: string): void {
  const fd = openSync(image, 'wx', 0o600);
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  const made = makeExt4Image(image, from);
  if (made.exitCode !== 0) throw new UserError(`cannot make the ${bytes}-byte disk image ${image} (${lastLine(made.stderr)}): is e2fsprogs installed and is there room?`);
}

/**
 * Refuses while any loop device is attached to `name`'s image: its filesystem is then mounted somewhere (LXC says
 * STOPPED before its post-stop hook unmounts an unprivileged container's image in the monitor's namespace; a diff
 * may hold it; a start may have just mounted it). e2fsck's own "mounted" check sees only its own namespace.
 * The caller holds the container's lock, which the mount hook takes too, so no start attaches one after this.
 */
export function requireImageUnused(image: string, name: string, then: string, sysBlock = '/sys/block'): void {
  const device = loopDeviceOf(image, sysBlock);
  if (device !== null) {
    throw new UserError(`${name}'s disk image is still in use (/dev/${device}: mounted by its start, by a stop whose post-stop hook has not finished, or by a diff): ${then}`);
  }
}

/**
 * Grows a stopped container's image to `bytes`: the file, then the filesystem in it; checked unused first, and
 * the file put back to its size if the filesystem cannot follow, so the file and the state (unchanged) agree.
 */
export function growImage(image: string, bytes: number, name: string): void {
  requireImageUnused(image, name, 'nothing was changed; try again once it is stopped and nothing reads it');
  const fd = openSync(image, 'r+');
  try {
    const was = fstatSync(fd).size;
    ftruncateSync(fd, bytes);
    const grown = growExt4Image(image);
    if (grown.exitCode !== 0) {
      ftruncateSync(fd, was);
      // e2fsck -p ends with an indented hint under its reason: the reason is the last line that starts at the margin.
      const reason = lastLine((grown.stderr || grown.stdout).split('\n').filter((line) => !/^\s/.test(line)).join('\n'));
      throw new UserError(`cannot grow the disk image ${image} (${reason}): it was left at its size; check it with e2fsck -f ${image}`);
    }
  } finally {
    closeSync(fd);
  }
}

/** The folders inside an image (or a staged image's source) that overlayfs uses. */
export function imageLayer(dir: string): { upper: string; work: string } {
  return { upper: `${dir}/upper`, work: `${dir}/work` };
}

/**
 * Mounts a container's image at `dir` inside its mount namespace (the mount hook): `-o loop` has mount(8) make a
 * loop device that goes (autoclear) once the filesystem is unmounted, which the end of the namespace does. After
 * a host's reboot nothing is mounted, and the loop driver may still be a module nobody loaded: loaded first.
 */
export function mountImage(image: string, dir: string, name: string, loopControl = '/dev/loop-control'): { upper: string; work: string } {
  if (!existsSync(image)) throw new UserError(`disk image ${image} is missing: this thin container is damaged; destroy it and create it again`);
  if (!existsSync(loopControl)) loadLoopDriver();
  // mount -o loop reuses a loop device already on the file. A read/write one is the same filesystem still held
  // (a reboot's previous run, a diff of the previous run): one ext4, safe. A read-only one would mount the write
  // layer read-only, and the union would fail saying something else: refused, naming it.
  const device = loopDeviceOf(image);
  if (device !== null && readOr(`/sys/block/${device}/ro`) === '1') {
    throw new UserError(
      `the disk image ${image} is open read-only (/dev/${device}, held by another process: a thin-lxc diff or commit reading it, or a mount of it elsewhere), ` +
        `so ${name} could not write to it: let it finish (losetup -j ${image} shows it), then start again`,
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const result = runMount('ext4', 'loop,noatime', image, dir);
  if (result.exitCode !== 0) {
    throw new UserError(`cannot mount the disk image ${image} on ${dir} (${lastLine(result.stderr)}): is the loop driver available (modprobe loop)? check the image with e2fsck -f ${image}`);
  }
  return imageLayer(dir);
}

/** The command that mounts a stopped container's image read-only at `dir` (in a namespace of the caller's). */
export function imageMountArgs(image: string, dir: string): string[] {
  return ['mount', '-t', 'ext4', '-o', 'loop,ro', image, dir];
}

/** The loop device the image is attached to (a running container's), from the kernel's own list; null when none. */
export function loopDeviceOf(image: string, sysBlock = '/sys/block'): string | null {
  for (const device of readdirSync(sysBlock).filter((name) => name.startsWith('loop'))) {
    if (backingFile(sysBlock, device) === image) return device;
  }
  return null;
}

function backingFile(sysBlock: string, device: string): string | null {
  try {
    return readFileSync(`${sysBlock}/${device}/loop/backing_file`, 'utf8').trim();
  } catch {
    return null; // not attached
  }
}

/**
 * Holds a container's image mounted read-only in a private namespace of a process of ours for reading it (diff):
 * its write layer is then /proc/PID/root/DIR/upper. A stopped container's on a read-only loop device, so nothing
 * can be written to it; a running one's is the filesystem its container has mounted (on its loop device, checked
 * again once held: the device could have gone to another file in between), its mount point read-only.
 */
export async function readImage(image: string, dir: string): Promise<{ upper: string; live: boolean; release(): Promise<void> }> {
  if (!existsSync(image)) throw new UserError(`disk image ${image} is missing: this thin container is damaged; destroy it and create it again`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const device = loopDeviceOf(image);
  let held;
  try {
    held = device === null ? await holdMount('ext4', 'loop,ro', image, dir) : await holdLiveMount('ext4', `/dev/${device}`, dir);
  } catch (error) {
    throw new UserError(`cannot read the disk image ${image} (${lastLine((error as Error).message)}): check it with e2fsck -n ${image}`, { cause: error });
  }
  if (device !== null && backingFile('/sys/block', device) !== image) {
    await held.release();
    throw new UserError(`the container using ${image} stopped while it was being read: run the same command again`);
  }
  const release = async () => {
    await held.release();
    // Our read-only loop device must be gone before a start's mount -o loop looks for one on the same file.
    if (device === null) await readOnlyLoopGone(image);
  };
  return { upper: imageLayer(`/proc/${held.pid}/root${dir}`).upper, live: device !== null, release };
}

/** Waits (a few seconds at most) until no read-only loop device is on `image`: the kernel clears one just after its last user. */
async function readOnlyLoopGone(image: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const device = loopDeviceOf(image);
    if (device === null || readOr(`/sys/block/${device}/ro`) !== '1') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * An ext4 superblock (the 1024 bytes at offset 1024): bytes used and the filesystem's size, exact once it is
 * unmounted (a stopped container's image); null when it is not ext4's. The fields dumpe2fs -h shows as Block
 * count, Free blocks and Block size, read without a process per container (list reads every image).
 */
export function parseSuperblock(block: Buffer): { usedBytes: number; sizeBytes: number } | null {
  if (block.length < 1024 || block.readUInt16LE(0x38) !== 0xef53) return null;
  const wide = (block.readUInt32LE(0x60) & 0x80) !== 0; // INCOMPAT_64BIT: the high halves count
  const blocks = block.readUInt32LE(0x04) + (wide ? block.readUInt32LE(0x150) * 2 ** 32 : 0);
  const free = block.readUInt32LE(0x0c) + (wide ? block.readUInt32LE(0x158) * 2 ** 32 : 0);
  const blockSize = 1024 * 2 ** block.readUInt32LE(0x18);
  return { usedBytes: (blocks - free) * blockSize, sizeBytes: blocks * blockSize };
}

function readSuperblock(image: string): { usedBytes: number; sizeBytes: number } | null {
  try {
    const fd = openSync(image, 'r');
    try {
      const block = Buffer.alloc(1024);
      return readSync(fd, block, 0, 1024, 1024) === 1024 ? parseSuperblock(block) : null;
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
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
    const report = disk.diskMount === null ? null : projectQuotaReport(disk.diskMount);
    const use = report === null ? undefined : parseRepquota(report).get(Number(disk.diskProject));
    return { usedBytes: use?.usedBytes ?? null, limitBytes, hostBytes: null };
  }
  const parsed = runningPid === null ? readSuperblock(image) : rootUse(runningPid);
  return { usedBytes: parsed?.usedBytes ?? null, limitBytes, hostBytes: allocated(image) };
}

function allocated(image: string): number | null {
  try {
    return statSync(image).blocks * 512;
  } catch {
    return null;
  }
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

/** Removes the staged source of an image once mkfs copied it in. */
export function removeStaged(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? 'failed';
}
