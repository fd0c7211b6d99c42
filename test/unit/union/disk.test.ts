// --disk's pure logic: which mechanism a root's filesystem gets, limits that promise more than is free, and use.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { diskMechanism, diskUse, mountOf, overcommitWarning, parseMountInfo } from '../../../src/union/disk.js';

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

test.run();
