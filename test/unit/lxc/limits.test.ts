// Resource limits as LXC config lines for each cgroup version, and the cgroup writes that change them live.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isLimitOf, limitLines, liveLimitWrites } from '../../../src/lxc/limits.js';

const limits = { memory: '268435456', cpus: '1.5' };

test('cgroup v2: memory.max and cpu.max (quota and period)', () => {
  assert.equal(limitLines(limits, 2), [
    { key: 'lxc.cgroup2.memory.max', value: '268435456' },
    { key: 'lxc.cgroup2.cpu.max', value: '150000 100000' },
  ]);
});

test('cgroup v1: limit_in_bytes, and the period before the quota the kernel checks against it', () => {
  assert.equal(limitLines(limits, 1), [
    { key: 'lxc.cgroup.memory.limit_in_bytes', value: '268435456' },
    { key: 'lxc.cgroup.cpu.cfs_period_us', value: '100000' },
    { key: 'lxc.cgroup.cpu.cfs_quota_us', value: '150000' },
  ]);
  assert.equal(limitLines({ memory: null, cpus: null }, 1), []);
});

test("the lines thin-lxc wrote are told from a base's own, in either version", () => {
  const ours = isLimitOf(limits);
  assert.ok(ours({ key: 'lxc.cgroup2.cpu.max', value: '150000 100000' }));
  assert.ok(ours({ key: 'lxc.cgroup.memory.limit_in_bytes', value: '268435456' }));
  assert.not.ok(ours({ key: 'lxc.cgroup.memory.limit_in_bytes', value: '1073741824' }), "a base's own limit stays");
});

test('live changes: the new limits, and "no limit" for a lifted one', () => {
  assert.equal(liveLimitWrites(limits, { memory: null, cpus: '1' }, 2), [
    { file: 'cpu.max', value: '100000 100000' },
    { file: 'memory.max', value: 'max' },
  ]);
  assert.equal(liveLimitWrites(limits, { memory: '134217728', cpus: null }, 1), [
    { file: 'memory.limit_in_bytes', value: '134217728' },
    { file: 'cpu.cfs_quota_us', value: '-1' },
  ]);
});

test("a live change is undone by the writes from the new limits back to the old: update's rollback", () => {
  const before = { memory: '268435456', cpus: null };
  const after = { memory: '52428800', cpus: '1' };
  assert.equal(liveLimitWrites(after, before, 1), [
    { file: 'memory.limit_in_bytes', value: '268435456' },
    { file: 'cpu.cfs_quota_us', value: '-1' },
  ]);
  assert.equal(liveLimitWrites({ memory: '52428800', cpus: null }, { memory: null, cpus: null }, 2), [{ file: 'memory.max', value: 'max' }]);
});

test.run();
