// --disk by image, where the root's filesystem has no project quota: a sparse ext4 file per container, made at
// create, mounted on a loop device by the mount hook (released with the mount), grown by update, read by diff and commit.
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { growExt4Image, holdLiveMount, holdMount, loadLoopDriver, makeExt4Image, mount as runMount, repairExt4Image, replayExt4Journal } from '../core/commands.js';
import { lastLine, UserError } from '../core/errors.js';
import { canonicalPath, removeTreeOnDevice } from '../core/files.js';

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
 * refused before anything is touched when the root's filesystem cannot hold what resize2fs writes (a full host
 * would stop it half way). `lockFd` is the container's lock, which the tools hold as long as they run (see
 * growExt4Image). If e2fsck fails, nothing was written past the old end: the file is put back to its size. If
 * resize2fs fails, it may have written into the new part (group descriptors, the resize inode's blocks there), so
 * the file is never cut back: e2fsck -fy repairs it where it stands, as resize2fs asks, and the caller's state
 * keeps the old limit (the same update again finishes the grow).
 */
export function growImage(image: string, bytes: number, name: string, lockFd: number): void {
  requireImageUnused(image, name, 'nothing was changed; try again once it is stopped and nothing reads it');
  const root = dirname(dirname(image));
  const fd = openSync(image, 'r+');
  try {
    const was = fstatSync(fd).size;
    // Bigger than the state says: a grow cut short (its resize2fs finished alone) or half done. Cut to `bytes`, the
    // file would lose every block the filesystem has used past it.
    if (was > bytes) {
      throw new UserError(`${name}'s disk image is already ${was} bytes, more than the ${bytes} asked (an earlier grow was cut short): nothing was changed; update it to ${was} bytes or more, which records its size (an image never shrinks)`);
    }
    const superblock = superblockOf(fd);
    const layout = superblock === null ? null : parseLayout(superblock);
    if (layout !== null) {
      const stat = statfsSync(dirname(image));
      const free = stat.bavail * stat.bsize;
      const needed = growthBytes(layout, bytes);
      if (needed > free) {
        const mib = Math.ceil((needed - free) / 2 ** 20);
        throw new UserError(`no space on the filesystem of ${root} to grow ${name}'s disk image: free ${mib} MiB there, then update again; nothing was changed`);
      }
    }
    ftruncateSync(fd, bytes);
    const grown = growExt4Image(image, lockFd);
    if (grown.exitCode === 0) return;
    const reason = toolReason(grown);
    if (grown.step === 'check') {
      ftruncateSync(fd, was);
      throw new UserError(`cannot grow the disk image ${image} (${reason}): it was left at its size; check it with e2fsck -f ${image}`);
    }
    // resize2fs ends with its advice (run e2fsck -fy) over two lines: its reason is its own `resize2fs: ...` line.
    const said = /^\S*resize2fs: (.+)$/m.exec(grown.stderr)?.[1] ?? reason;
    const repaired = repairExt4Image(image, lockFd);
    // 1: errors corrected; 2 and up: uncorrected or failed.
    if (repaired.exitCode > 1) {
      throw new UserError(
        `resize2fs stopped half way growing ${name}'s disk image ${image} (${said}) and e2fsck -fy could not repair it (${lastLine(repaired.stderr || repaired.stdout)}): ` +
          `do not start ${name}; free space on the filesystem of ${root}, then run e2fsck -fy ${image}`,
      );
    }
    const now = imageUse(image)?.sizeBytes;
    throw new UserError(
      `resize2fs stopped half way growing ${name}'s disk image (${said}); e2fsck -fy repaired it, its filesystem now holds ${now ?? 'an unknown number of'} bytes ` +
        `in a ${bytes}-byte file, and its limit stays ${was} bytes: free space on the filesystem of ${root}, then update again`,
    );
  } finally {
    closeSync(fd);
  }
}

/** An ext4 superblock's layout fields that say how much metadata a grow adds (see growthBytes); null when not ext4's. */
export interface Layout {
  blockSize: number;
  blocks: number;
  firstDataBlock: number;
  blocksPerGroup: number;
  inodeTableBlocks: number;
  descSize: number;
  reservedGdtBlocks: number;
  sparse: boolean;
}

export function parseLayout(block: Buffer): Layout | null {
  if (block.length < 1024 || block.readUInt16LE(0x38) !== 0xef53) return null;
  const incompat = block.readUInt32LE(0x60);
  const wide = (incompat & 0x80) !== 0; // INCOMPAT_64BIT
  const blockSize = 1024 * 2 ** block.readUInt32LE(0x18);
  const inodeSize = block.readUInt32LE(0x4c) === 0 ? 128 : block.readUInt16LE(0x58); // revision 0: fixed 128
  return {
    blockSize,
    blocks: block.readUInt32LE(0x04) + (wide ? block.readUInt32LE(0x150) * 2 ** 32 : 0),
    firstDataBlock: block.readUInt32LE(0x14),
    blocksPerGroup: block.readUInt32LE(0x20),
    inodeTableBlocks: Math.ceil((block.readUInt32LE(0x28) * inodeSize) / blockSize),
    descSize: wide ? block.readUInt16LE(0xfe) || 64 : 32,
    reservedGdtBlocks: block.readUInt16LE(0xce),
    sparse: (block.readUInt32LE(0x64) & 0x1) !== 0, // RO_COMPAT_SPARSE_SUPER
  };
}

/**
 * Host bytes resize2fs may write (holes of the sparse file it fills) growing a filesystem of `layout` to `bytes`,
 * an upper bound: each group added gets its two bitmaps and its inode table (resize2fs may leave the table to the
 * kernel's lazy init at the next mount, which then writes it: counted either way); each group that holds backups
 * (all of them, or with sparse_super 0, 1 and the powers of 3, 5 and 7) a superblock, the whole new descriptor
 * table and the reserved GDT blocks, new groups whole, old ones the descriptor blocks added. flex_bg and meta_bg
 * only place these elsewhere or write fewer. Plus 4 MiB for the sparse file's own extent blocks and rounding.
 */
export function growthBytes(layout: Layout, bytes: number): number {
  const groupsOf = (blocks: number) => Math.ceil((blocks - layout.firstDataBlock) / layout.blocksPerGroup);
  const oldGroups = groupsOf(layout.blocks);
  const newGroups = groupsOf(Math.floor(bytes / layout.blockSize));
  const gdtBlocks = (groups: number) => Math.ceil((groups * layout.descSize) / layout.blockSize);
  const addedGdt = gdtBlocks(newGroups) - gdtBlocks(oldGroups);
  let blocks = 0;
  for (let group = 0; group < newGroups; group++) {
    const backup = !layout.sparse || hasSparseBackup(group);
    if (group >= oldGroups) blocks += 2 + layout.inodeTableBlocks + (backup ? 1 + gdtBlocks(newGroups) + layout.reservedGdtBlocks : 0);
    else if (backup) blocks += Math.max(addedGdt, 0);
  }
  return blocks * layout.blockSize + 4 * 2 ** 20;
}

function hasSparseBackup(group: number): boolean {
  if (group <= 1) return true;
  for (const base of [3, 5, 7]) {
    let power = base;
    while (power < group) power *= base;
    if (power === group) return true;
  }
  return false;
}

/**
 * Replays the journal of a stopped container's image that a crash (the host's power lost while it ran) left to
 * replay: ext4 cannot on a read-only loop device, where diff and commit mount it. e2fsck -p does, as a start's
 * read/write mount would. The caller holds the container's lock (`lockFd`, given to e2fsck) and saw no loop device.
 */
export function replayJournal(image: string, name: string, lockFd: number): void {
  if (!needsRecovery(image)) return;
  const replayed = replayExt4Journal(image, lockFd);
  // 1: errors corrected, which is fine; 2 and up: reboot needed, uncorrected or failed.
  if (replayed.exitCode > 1) {
    throw new UserError(`${name}'s disk image ${image} has a journal to replay (the host stopped while it ran), and e2fsck -p could not (${toolReason(replayed)}): start and stop ${name} once, then run this again`);
  }
}

/** Whether the image's superblock says its journal is to be replayed (INCOMPAT_RECOVER, which ext4 sets while mounted). */
export function needsRecovery(image: string): boolean {
  const block = readSuperblock(image);
  return block !== null && (block.readUInt32LE(0x60) & 0x4) !== 0;
}

/** Why an e2fsprogs tool failed: e2fsck -p ends with an indented hint under its reason, the last line at the margin. */
function toolReason(result: { stdout: string; stderr: string }): string {
  return lastLine((result.stderr || result.stdout).split('\n').filter((line) => !/^\s/.test(line)).join('\n'));
}

/** The ext4 superblock (1024 bytes at 1024) of the image open on `fd`; null when the file is short or not ext4. */
function superblockOf(fd: number): Buffer | null {
  const block = Buffer.alloc(1024);
  return readSync(fd, block, 0, 1024, 1024) === 1024 && block.readUInt16LE(0x38) === 0xef53 ? block : null;
}

/** The same, of the image at `image`. */
function readSuperblock(image: string): Buffer | null {
  const fd = openSync(image, 'r');
  try {
    return superblockOf(fd);
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

/**
 * The loop device the image is attached to (a running container's), from the kernel's own list; null when none.
 * The kernel names the file by its real path: a root given through a symlink must not hide a device.
 */
export function loopDeviceOf(image: string, sysBlock = '/sys/block'): string | null {
  const real = canonicalPath(image);
  for (const device of readdirSync(sysBlock).filter((name) => name.startsWith('loop'))) {
    if (backingFile(sysBlock, device) === real) return device;
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
export async function readImage(image: string, given: string, name: string, lockFd: number): Promise<{ upper: string; live: boolean; release(): Promise<void> }> {
  if (!existsSync(image)) throw new UserError(`disk image ${image} is missing: this thin container is damaged; destroy it and create it again`);
  mkdirSync(given, { recursive: true, mode: 0o700 });
  // Its real path: /proc/PID/root resolves an absolute symlink (a root given through one) from our root, not PID's.
  const dir = canonicalPath(given);
  const device = loopDeviceOf(image);
  if (device === null) replayJournal(image, name, lockFd);
  let held;
  try {
    held = device === null ? await holdMount('ext4', 'loop,ro', image, dir) : await holdLiveMount('ext4', `/dev/${device}`, dir);
  } catch (error) {
    throw new UserError(`cannot read the disk image ${image} (${lastLine((error as Error).message)}): check it with e2fsck -n ${image}`, { cause: error });
  }
  if (device !== null && backingFile('/sys/block', device) !== canonicalPath(image)) {
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

/** Bytes used and the size of a stopped container's image, from its superblock; null when unreadable. */
export function imageUse(image: string): { usedBytes: number; sizeBytes: number } | null {
  try {
    const block = readSuperblock(image);
    return block === null ? null : parseSuperblock(block);
  } catch {
    return null;
  }
}

/** The blocks an image's sparse file holds on the host; null when it is gone. */
export function imageAllocated(image: string): number | null {
  try {
    return statSync(image).blocks * 512;
  } catch {
    return null;
  }
}

/** Removes the staged source of an image once mkfs copied it in: its upper is the container's ids' on the host, so by open directories, as a write layer. */
export function removeStaged(dir: string): void {
  removeTreeOnDevice(dir, 'the staged write layer of a new image');
}
