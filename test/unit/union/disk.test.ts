// --disk's pure logic: which mechanism a root's filesystem gets, project ids, and reading use from the tools' output.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseProject, diskMechanism, diskUse, limitInodes, limitKiB, loopDeviceOf, mountOf, overcommitWarning, parseMountInfo, parseRepquota, parseSuperblock, projectLimit, requireImageUnused } from '../../../src/union/disk.js';

const MOUNTINFO = [
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard,resv_strict',
  '30 22 7:0 / /srv/quota rw,relatime shared:7 - ext4 /dev/loop0 rw,prjquota',
  '31 22 7:1 / /srv/xfs rw,relatime shared:8 - xfs /dev/loop1 rw,attr2,inode64,logbufs=8,logbsize=32k,prjquota',
  '32 22 7:2 / /srv/counting rw,relatime shared:9 - xfs /dev/loop2 rw,attr2,pqnoenforce',
  '33 22 0:40 / /srv/with\\040space rw shared:10 - ext4 /dev/loop3 rw,prjquota',
  '34 22 0:41 / /srv/tmp rw shared:11 - tmpfs tmpfs rw,size=1024k,prjquota',
  '',
].join('\n');

test('mountinfo: mount point (with its octal escapes), type and the filesystem\'s own options', () => {
  const mounts = parseMountInfo(MOUNTINFO);
  assert.is(mounts.length, 6);
  assert.equal(mounts[1], { mountPoint: '/srv/quota', fstype: 'ext4', superOptions: ['rw', 'prjquota'] });
  assert.is(mounts[4]!.mountPoint, '/srv/with space');
});

test('a path lives on the longest mount point over it; a later mount on the same point covers the earlier one', () => {
  const mounts = parseMountInfo(MOUNTINFO);
  assert.is(mountOf(mounts, '/srv/quota/containers')?.mountPoint, '/srv/quota');
  assert.is(mountOf(mounts, '/srv/quotas')?.mountPoint, '/');
  assert.is(mountOf(mounts, '/containers')?.mountPoint, '/');
  const covered = parseMountInfo(`${MOUNTINFO}40 22 7:5 / /srv/quota rw - ext4 /dev/loop5 rw\n`);
  assert.equal(mountOf(covered, '/srv/quota/c')?.superOptions, ['rw']);
});

test('quota where ext4 has prjquota or xfs prjquota/pquota; an image anywhere else (no quota, only counting, tmpfs)', () => {
  const mounts = parseMountInfo(MOUNTINFO);
  assert.equal(diskMechanism(mounts, '/srv/quota/containers'), { mode: 'quota', mountPoint: '/srv/quota' });
  assert.equal(diskMechanism(mounts, '/srv/xfs/c'), { mode: 'quota', mountPoint: '/srv/xfs' });
  assert.equal(diskMechanism(mounts, '/srv/with space/c'), { mode: 'quota', mountPoint: '/srv/with space' });
  assert.equal(diskMechanism(mounts, '/containers'), { mode: 'image' });
  assert.equal(diskMechanism(mounts, '/srv/counting/c'), { mode: 'image' });
  assert.equal(diskMechanism(mounts, '/srv/tmp/c'), { mode: 'image' });
  assert.equal(diskMechanism([], '/containers'), { mode: 'image' });
});

test('project ids: high, the same for the same directory, and never one already in use', () => {
  const id = chooseProject('/containers/web1', new Set());
  assert.ok(id >= 1_000_000_000 && id < 2_000_000_000, String(id));
  assert.is(chooseProject('/containers/web1', new Set()), id);
  assert.is(chooseProject('/containers/web1', new Set([id])), id + 1);
  assert.is.not(chooseProject('/containers/web2', new Set()), id);
});

test('repquota -P -n -p -v: use and hard limit per project, in bytes', () => {
  const report = [
    '*** Report for project quotas on device /dev/loop0',
    'Block grace time: 7days; Inode grace time: 7days',
    '                        Block limits                File limits',
    'Project         used    soft    hard  grace    used  soft  hard  grace',
    '----------------------------------------------------------------------',
    '#0        --      20       0       0      0      2     0     0      0',
    '#1000000042 +-   10240       0   10240   1700000000  3     0     0      0',
    '',
    'Statistics:',
    'Total blocks: 7',
  ].join('\n');
  const projects = parseRepquota(report);
  assert.equal([...projects.keys()], [0, 1000000042]);
  assert.equal(projects.get(1000000042), { usedBytes: 10240 * 1024, hardBytes: 10240 * 1024 });
});

test('limits go to setquota in KiB rounded up: never below what was asked', () => {
  assert.is(limitKiB(1024), 1);
  assert.is(limitKiB(1025), 2);
  assert.is(limitKiB(2 ** 30), 2 ** 20);
});

test('a quota also limits inodes, as many as an image of that size would have (mkfs.ext4\'s ratios): files that take no block cannot use up the host\'s inode table', () => {
  assert.is(limitInodes(16 * 2 ** 20), 4096); // below 512M: one per 4 KiB (mke2fs.conf "small")
  assert.is(limitInodes(64 * 2 ** 20), 16384);
  assert.is(limitInodes(2 ** 30), 65536); // one per 16 KiB (the default)
  assert.is(limitInodes(4 * 2 ** 40), 2 ** 27); // one per 32 KiB ("big")
  assert.is(limitInodes(16 * 2 ** 40), 2 ** 28); // one per 64 KiB ("huge")
  assert.equal(projectLimit(64 * 2 ** 20), { hardKiB: 65536, hardInodes: 16384 });
  assert.equal(projectLimit(0), { hardKiB: 0, hardInodes: 0 }, 'no limit: both cleared');
});

test('limits that promise more than the filesystem has free: this one alone first, then all of the root\'s together (each less what it holds); null when they fit', () => {
  const G = 2 ** 30;
  assert.is(
    overcommitWarning('/c', 'web', '200G', { limitBytes: 200 * G, heldBytes: 0 }, [], 79 * G),
    '--disk 200G is more than the 79G free under /c now: a limit reserves no space, so web can fill that filesystem before it reaches its limit',
  );
  assert.is(
    overcommitWarning('/c', 'web', '50G', { limitBytes: 50 * G, heldBytes: 0 }, [{ limitBytes: 40 * G, heldBytes: 2 * G }], 79 * G),
    'the disk limits under /c may still take 88G in all (each limit less what its container holds), more than the 79G free there: together they can fill that filesystem before their limits',
  );
  assert.is(overcommitWarning('/c', 'web', '50G', { limitBytes: 50 * G, heldBytes: 0 }, [{ limitBytes: 40 * G, heldBytes: 20 * G }], 79 * G), null, '50G + 20G more fit in 79G');
  assert.is(overcommitWarning('/c', 'web', '80G', { limitBytes: 80 * G, heldBytes: 10 * G }, [], 79 * G), null, 'a grow counts what the image already holds');
});

test('a running image\'s use is never read through a pid that now belongs to a host process (its root is the host\'s)', () => {
  const state = { disk: String(64 * 2 ** 20), diskMode: 'image' as const, diskProject: null, diskMount: null };
  // Our own pid stands for one reused by a host process after the container stopped: same mount namespace as ours.
  const use = diskUse(state, '/nonexistent/disk.img', String(process.pid));
  assert.equal(use, { usedBytes: null, limitBytes: 64 * 2 ** 20, hostBytes: null });
});

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

test.run();
