// root's subordinate ids: what setup adds to /etc/subuid and /etc/subgid, and what create requires of them.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureRootRanges, freeRange, othersOverlapping, requireRootRanges, rootRanges, withinRanges } from '../../../src/lxc/subids.js';

test('root\'s ranges are read by name or by uid 0; a map must fit inside one', () => {
  const ranges = rootRanges('alice:100000:65536\nroot:200000:65536\n0:400000:10\n# x\n');
  assert.equal(ranges, [{ start: 200000, count: 65536 }, { start: 400000, count: 10 }]);
  assert.ok(withinRanges({ host: 200000, range: 65536 }, ranges));
  assert.ok(withinRanges({ host: 200100, range: 1000 }, ranges));
  assert.not.ok(withinRanges({ host: 200001, range: 65536 }, ranges));
  assert.not.ok(withinRanges({ host: 100000, range: 65536 }, ranges));
});

test('ensureRootRanges adds root:100000:65536 where root has no range and no one has those ids, once, and leaves a range root has alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'thin-lxc-subids-'));
  const [uid, gid] = [join(dir, 'subuid'), join(dir, 'subgid')];
  writeFileSync(uid, 'alice:300000:65536');
  writeFileSync(gid, 'root:300000:65536\n');
  assert.equal(ensureRootRanges([uid, gid]), [{ file: uid, map: { host: 100000, range: 65536 } }]);
  assert.is(readFileSync(uid, 'utf8'), 'alice:300000:65536\nroot:100000:65536\n');
  assert.is(readFileSync(gid, 'utf8'), 'root:300000:65536\n');
  assert.equal(ensureRootRanges([uid, gid]), []);
  assert.is(readFileSync(uid, 'utf8'), 'alice:300000:65536\nroot:100000:65536\n');
});

test("ensureRootRanges never gives root ids another user has (Debian's first user gets 100000:65536): the first free range above, the same in both files", () => {
  const dir = mkdtempSync(join(tmpdir(), 'thin-lxc-subids-'));
  const [uid, gid] = [join(dir, 'subuid'), join(dir, 'subgid')];
  writeFileSync(uid, 'alice:100000:65536\nbob:165536:65536\n');
  writeFileSync(gid, 'alice:100000:65536\n');
  const free = { host: 231072, range: 65536 };
  assert.equal(ensureRootRanges([uid, gid]), [{ file: uid, map: free }, { file: gid, map: free }]);
  assert.is(readFileSync(uid, 'utf8'), 'alice:100000:65536\nbob:165536:65536\nroot:231072:65536\n');
  assert.is(readFileSync(gid, 'utf8'), 'alice:100000:65536\nroot:231072:65536\n');
});

test('freeRange and othersOverlapping: ids shared with another user, by any overlap', () => {
  assert.equal(freeRange(['alice:100000:10\n']), { host: 100010, range: 65536 });
  assert.equal(freeRange(['alice:200000:65536\n']), { host: 100000, range: 65536 });
  assert.equal(othersOverlapping({ host: 100000, range: 65536 }, 'alice:165535:1\nroot:100000:65536\nbob:165536:5\n').map((entry) => entry.owner), ['alice']);
});

test('with newuidmap installed, a map outside root\'s ranges is refused in one line naming the fix; without it, nothing is required', () => {
  const dir = mkdtempSync(join(tmpdir(), 'thin-lxc-subids-'));
  const file = join(dir, 'subuid');
  writeFileSync(file, '');
  assert.throws(
    () => requireRootRanges({ host: 100000, range: 65536 }, [file], true),
    (error: Error) => error.message === `the map 100000:65536 is not within root's ranges in ${file}, and LXC maps ids with newuidmap, which allows only those: run thin-lxc setup, or add root:100000:65536 to /etc/subuid and /etc/subgid`,
  );
  requireRootRanges({ host: 100000, range: 65536 }, [file], false);
  writeFileSync(file, 'root:100000:65536\n');
  requireRootRanges({ host: 100000, range: 65536 }, [file], true);
});

test("with newuidmap installed, a map sharing ids with another user's range is refused, even within root's", () => {
  const dir = mkdtempSync(join(tmpdir(), 'thin-lxc-subids-'));
  const file = join(dir, 'subuid');
  writeFileSync(file, 'alice:100000:65536\nroot:100000:65536\nroot:231072:65536\n');
  assert.throws(
    () => requireRootRanges({ host: 100000, range: 65536 }, [file], true),
    (error: Error) =>
      error.message ===
      `the map 100000:65536 shares ids with alice's subordinate ids 100000:65536 in ${file}, so alice's own user namespaces would run as the container's ids: choose --idmap within a range of root's that no one else has (root has 100000:65536, 231072:65536 there; thin-lxc setup gives root one)`,
  );
  requireRootRanges({ host: 231072, range: 65536 }, [file], true);
});

test.run();
