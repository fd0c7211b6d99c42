// --disk by project quota, where the root's filesystem enforces one: the write layer and work folder get a
// project id of their own, and the project a hard limit on blocks and inodes. Cleared at removal.
import { createHash } from 'node:crypto';
import { projectQuotaReport, setProjectLimit, setQuotaProject } from '../core/commands.js';
import { lastLine, UserError } from '../core/errors.js';

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

/** A project's use and hard limit as repquota reports them; null when the filesystem or the report is not there. */
export function projectUse(mountPoint: string, project: number): ProjectUse | null {
  const report = projectQuotaReport(mountPoint);
  return report === null ? null : (parseRepquota(report).get(project) ?? null);
}
