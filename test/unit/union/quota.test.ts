// --disk by project quota: project ids, limits in setquota's units, and reading repquota's report.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chooseProject, limitInodes, limitKiB, parseRepquota, projectLimit } from '../../../src/union/quota.js';

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

test.run();
