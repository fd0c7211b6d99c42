// Resource limits as LXC config lines for the host's cgroup version: cgroup2 keys on a unified host,
// cgroup (v1) keys where the memory and cpu controllers still live in the v1 hierarchy.
import { existsSync } from 'node:fs';

type CgroupVersion = 1 | 2;

/** A unified host has cgroup.controllers at the top of /sys/fs/cgroup; a v1 or hybrid host has it below unified/, if at all. */
export function hostCgroupVersion(): CgroupVersion {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? 2 : 1;
}

/** CFS's period: --cpus N allows N periods' worth of CPU time per period, as Docker does. */
const CPU_PERIOD_US = 100_000;

export function limitLines(limits: { memory: string | null; cpus: string | null }, version: CgroupVersion): { key: string; value: string }[] {
  const lines: { key: string; value: string }[] = [];
  const quota = limits.cpus === null ? null : String(Math.round(Number(limits.cpus) * CPU_PERIOD_US));
  if (version === 2) {
    if (limits.memory !== null) lines.push({ key: 'lxc.cgroup2.memory.max', value: limits.memory });
    if (quota !== null) lines.push({ key: 'lxc.cgroup2.cpu.max', value: `${quota} ${CPU_PERIOD_US}` });
  } else {
    if (limits.memory !== null) lines.push({ key: 'lxc.cgroup.memory.limit_in_bytes', value: limits.memory });
    if (quota !== null) {
      // The period first: the kernel checks a new quota against the period in force.
      lines.push({ key: 'lxc.cgroup.cpu.cfs_period_us', value: String(CPU_PERIOD_US) });
      lines.push({ key: 'lxc.cgroup.cpu.cfs_quota_us', value: quota });
    }
  }
  return lines;
}

/** The limit lines thin-lxc wrote for these limits, in either cgroup version: a base's own limits are not ours to drop. */
export function isLimitOf(limits: { memory: string | null; cpus: string | null }): (entry: { key: string; value: string }) => boolean {
  const ours = ([1, 2] as const).flatMap((version) => limitLines(limits, version));
  return (entry) => ours.some((line) => line.key === entry.key && line.value === entry.value);
}

/**
 * The cgroup files to write for a running container whose limits change: the new limits, and for a limit
 * lifted, the controller's "no limit" (max on v2, -1 on v1). Names as lxc-cgroup takes them.
 */
export function liveLimitWrites(
  before: { memory: string | null; cpus: string | null },
  after: { memory: string | null; cpus: string | null },
  version: CgroupVersion,
): { file: string; value: string }[] {
  const unlimited = version === 2 ? { memory: 'max', cpu: `max ${CPU_PERIOD_US}` } : { memory: '-1', cpu: '-1' };
  const writes = limitLines(after, version).map(({ key, value }) => ({ file: key.replace(/^lxc\.cgroup2?\./, ''), value }));
  if (before.memory !== null && after.memory === null) writes.push({ file: version === 2 ? 'memory.max' : 'memory.limit_in_bytes', value: unlimited.memory });
  if (before.cpus !== null && after.cpus === null) writes.push({ file: version === 2 ? 'cpu.max' : 'cpu.cfs_quota_us', value: unlimited.cpu });
  return writes;
}
