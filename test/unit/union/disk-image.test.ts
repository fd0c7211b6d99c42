// --disk by image: reading an ext4 superblock, and whether any loop device holds an image.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { growthBytes, loopDeviceOf, parseLayout, parseSuperblock, requireImageUnused } from '../../../src/union/disk-image.js';

test('an ext4 superblock: used bytes and size, with the high halves of a 64-bit filesystem; null for anything else', () => {
  const block = Buffer.alloc(1024);
  block.writeUInt16LE(0xef53, 0x38);
  block.writeUInt32LE(262144, 0x04); // Block count
  block.writeUInt32LE(250000, 0x0c); // Free blocks
  block.writeUInt32LE(2, 0x18); // 1024 << 2 = 4096
  assert.equal(parseSuperblock(block), { usedBytes: 12144 * 4096, sizeBytes: 262144 * 4096 });
  block.writeUInt32LE(0x80, 0x60); // 64bit
  block.writeUInt32LE(1, 0x150);
  block.writeUInt32LE(1, 0x158);
  assert.equal(parseSuperblock(block), { usedBytes: 12144 * 4096, sizeBytes: (2 ** 32 + 262144) * 4096 });
  block.writeUInt16LE(0, 0x38);
  assert.is(parseSuperblock(block), null);
  assert.is(parseSuperblock(Buffer.alloc(10)), null);
});

test('what resize2fs may write growing an image: bitmaps and inode tables of the new groups, backups of the sparse ones, the descriptor blocks added to the old ones', () => {
  // mkfs.ext4 of a 64 MiB file as create makes it (dumpe2fs: 1 KiB blocks, 8192 per group, 512 inode blocks per
  // group, 256 reserved GDT blocks, 64bit with 64-byte descriptors, sparse_super).
  const block = Buffer.alloc(1024);
  block.writeUInt16LE(0xef53, 0x38);
  block.writeUInt32LE(65536, 0x04);
  block.writeUInt32LE(1, 0x14); // first data block
  block.writeUInt32LE(0, 0x18); // 1024-byte blocks
  block.writeUInt32LE(8192, 0x20);
  block.writeUInt32LE(2048, 0x28);
  block.writeUInt32LE(1, 0x4c); // dynamic revision
  block.writeUInt16LE(256, 0x58);
  block.writeUInt32LE(0x80, 0x60); // 64bit
  block.writeUInt32LE(0x1, 0x64); // sparse_super
  block.writeUInt16LE(256, 0xce);
  block.writeUInt16LE(64, 0xfe);
  const layout = parseLayout(block)!;
  assert.equal(layout, { blockSize: 1024, blocks: 65536, firstDataBlock: 1, blocksPerGroup: 8192, inodeTableBlocks: 512, descSize: 64, reservedGdtBlocks: 256, sparse: true });
  // To 1 GiB: groups 8 to 127 added, 514 blocks each; 9, 25, 27, 49, 81 and 125 hold backups (1 + 8 + 256 blocks);
  // the old backup groups 0, 1, 3, 5 and 7 get 7 descriptor blocks more each.
  assert.is(growthBytes(layout, 2 ** 30), (120 * 514 + 6 * 265 + 5 * 7) * 1024 + 4 * 2 ** 20);
  assert.is(growthBytes(layout, 65536 * 1024), 4 * 2 ** 20, 'nothing added: only the margin');
  assert.is(parseLayout(Buffer.alloc(1024)), null);
});

test('an image with any loop device on it (the kernel\'s list, whatever namespace mounted it) is in use: growing or copying it is refused in one line', () => {
  const sys = mkdtempSync(join(tmpdir(), 'thin-lxc-sysblock-'));
  try {
    for (const [device, backing] of [['loop0', '/srv/a/disk.img'], ['loop1', null], ['loop7', '/srv/b/disk.img'], ['vda', null]] as const) {
      mkdirSync(join(sys, device, 'loop'), { recursive: true });
      if (backing) writeFileSync(join(sys, device, 'loop', 'backing_file'), `${backing}\n`);
    }
    assert.is(loopDeviceOf('/srv/b/disk.img', sys), 'loop7');
    assert.is(loopDeviceOf('/srv/c/disk.img', sys), null);
    requireImageUnused('/srv/c/disk.img', 'c', 'try again', sys);
    assert.throws(
      () => requireImageUnused('/srv/a/disk.img', 'web', 'nothing was changed; try again', sys),
      (error: Error) => error.message === "web's disk image is still in use (/dev/loop0: mounted by its start, by a stop whose post-stop hook has not finished, or by a diff): nothing was changed; try again",
    );
  } finally {
    rmSync(sys, { recursive: true, force: true });
  }
});

test('an image reached through a symlinked root is found by the real path the kernel names its loop device by', () => {
  const sys = mkdtempSync(join(tmpdir(), 'thin-lxc-sysblock-'));
  try {
    const real = join(sys, 'srv-containers');
    mkdirSync(join(real, 'web'), { recursive: true });
    writeFileSync(join(real, 'web', 'disk.img'), '');
    symlinkSync(real, join(sys, 'containers'));
    mkdirSync(join(sys, 'loop3', 'loop'), { recursive: true });
    writeFileSync(join(sys, 'loop3', 'loop', 'backing_file'), `${join(real, 'web', 'disk.img')}\n`);
    assert.is(loopDeviceOf(join(sys, 'containers', 'web', 'disk.img'), sys), 'loop3');
  } finally {
    rmSync(sys, { recursive: true, force: true });
  }
});

test.run();
