// root's subordinate ids: what setup adds to /etc/subuid and /etc/subgid, and what create requires of them.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureRootRanges, freeRange, othersOverlapping, plannedRootRange, requireRootRanges, rootDefaultMap, rootRanges, withinRanges } from '../../../src/lxc/subids.js';

test('root\'s ranges are read by name or by uid 0; a map must fit inside one', () => {
  const ranges = rootRanges('alice:100000:65536\nroot:200000:65536\n0:400000:10\n# x\n');
  assert.equal(ranges, [{ start: 200000, count: 65536 }, { start: 400000, count: 10 }]);
  assert.ok(withinRanges({ host: 200000, range: 65536 }, ranges));
  assert.ok(withinRanges({ host: 200100, range: 1000 }, ranges));
  assert.not.ok(withinRanges({ host: 200001, range: 65536 }, ranges));
  assert.not.ok(withinRanges({ host: 100000, range: 65536 }, ranges));
});

test("ensureRootRanges adds root:100000:65536 where no one has those ids, in both files (root's 300000 in subgid is alice's in subuid), once; a range root has in both is left alone", () => {
  const dir = mkdtempSync(join(tmpdir(), 'thin-lxc-subids-'));
  const [uid, gid] = [join(dir, 'subuid'), join(dir, 'subgid')];
  writeFileSync(uid, 'alice:300000:65536');
  writeFileSync(gid, 'root:300000:65536\n');
  const map = { host: 100000, range: 65536 };
  assert.equal(ensureRootRanges([uid, gid]), [{ file: uid, map }, { file: gid, map }]);
  assert.is(readFileSync(uid, 'utf8'), 'alice:300000:65536\nroot:100000:65536\n');
  assert.is(readFileSync(gid, 'utf8'), 'root:300000:65536\nroot:100000:65536\n');
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

test("plannedRootRange: nothing when root has a range of 65536 in both files; root's own from one file when no one else has it; else freeRange's", () => {
  assert.equal(plannedRootRange('root:300000:65536\n', 'root:300000:65536\n'), null);
  assert.equal(plannedRootRange('root:300000:65536\n', ''), { host: 300000, range: 65536 }, "root's range in one file is given in the other");
  assert.equal(plannedRootRange('alice:100000:65536\n', 'root:100000:65536\n'), { host: 165536, range: 65536 }, "root's own range is no choice where it is alice's");
  assert.equal(plannedRootRange('root:100000:1000\n', 'root:100000:1000\n'), { host: 101000, range: 65536 }, 'a range too small for a map is no range');
});

test("rootDefaultMap: root's first range of 65536 ids held in both files, else 100000:65536", () => {
  assert.equal(rootDefaultMap('alice:100000:65536\nroot:165536:65536\n', 'root:165536:65536\n'), { host: 165536, range: 65536 });
  assert.equal(rootDefaultMap('root:100000:1000\nroot:400000:131072\n', 'root:400000:65536\n'), { host: 400000, range: 65536 });
  assert.equal(rootDefaultMap('', ''), { host: 100000, range: 65536 });
});

test("ensureRootRanges writes by rename (mode kept) under shadow's locks, and leaves no lock or temporary file", () => {
  const dir = mkdtempSync(join(tmpdir(), 'thin-lxc-subids-'));
  const [uid, gid] = [join(dir, 'subuid'), join(dir, 'subgid')];
  writeFileSync(uid, 'alice:100000:65536');
  writeFileSync(gid, 'root:165536:65536\n');
  chmodSync(uid, 0o600);
  assert.equal(ensureRootRanges([uid, gid]), [{ file: uid, map: { host: 165536, range: 65536 } }]);
  assert.is(readFileSync(uid, 'utf8'), 'alice:100000:65536\nroot:165536:65536\n');
  assert.is(statSync(uid).mode & 0o777, 0o600);
  assert.equal(readdirSync(dir).sort(), ['subgid', 'subuid']);
});

test("ensureRootRanges refuses while a live process holds shadow's lock, changing nothing, and removes a stale lock", () => {
  const dir = mkdtempSync(join(tmpdir(), 'thin-lxc-subids-'));
  const [uid, gid] = [join(dir, 'subuid'), join(dir, 'subgid')];
  writeFileSync(uid, '');
  writeFileSync(gid, '');
  writeFileSync(`${gid}.lock`, String(process.pid));
  assert.throws(() => ensureRootRanges([uid, gid]), (error: Error) => error.message === `${gid} is locked by pid ${process.pid} (${gid}.lock), which is changing it: run thin-lxc setup again once it is done`);
  assert.equal([readFileSync(uid, 'utf8'), readFileSync(gid, 'utf8')], ['', '']);
  assert.equal(readdirSync(dir).sort(), ['subgid', 'subgid.lock', 'subuid'], 'our lock is released, theirs kept');
  writeFileSync(`${gid}.lock`, '2147483646'); // no such process
  assert.equal(ensureRootRanges([uid, gid]).map(({ file }) => file), [uid, gid]);
  assert.equal(readdirSync(dir).sort(), ['subgid', 'subuid']);
});

test("a map sharing ids with another user's range is refused without newuidmap too (LXC then writes any map)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'thin-lxc-subids-'));
  const file = join(dir, 'subuid');
  writeFileSync(file, 'alice:100000:65536\nroot:100000:131072\n');
  assert.throws(() => requireRootRanges({ host: 150000, range: 65536 }, [file], false), /the map 150000:65536 shares ids with alice's subordinate ids 100000:65536/);
  requireRootRanges({ host: 165536, range: 65536 }, [file], false);
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
      `the map 100000:65536 shares ids with alice's subordinate ids 100000:65536 in ${file}, so alice's own user namespaces would run as the container's ids: choose --idmap within a range of root's that no one else has (root has 100000:65536, 231072:65536 there; remove root's lines that share others' ids from /etc/subuid and /etc/subgid, then thin-lxc setup gives root one)`,
  );
  requireRootRanges({ host: 231072, range: 65536 }, [file], true);
});

test.run();
