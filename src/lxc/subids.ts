// Subordinate ids (/etc/subuid, /etc/subgid): where newuidmap and newgidmap are installed, LXC maps an unprivileged
// container's ids with them, and they allow root only the ranges these files give it.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { UserError } from '../core/errors.js';
import { DEFAULT_IDMAP, formatIdMap, type IdMap } from '../union/idmap.js';

export const SUBID_FILES = ['/etc/subuid', '/etc/subgid'] as const;

interface Range {
  start: number;
  count: number;
}

/** root's ranges in a subuid or subgid file (`root:100000:65536`, or by id `0:100000:65536`). */
export function rootRanges(text: string): Range[] {
  return text.split('\n').flatMap((line) => {
    const match = /^(root|0):(\d+):(\d+)\s*$/.exec(line.trim());
    return match ? [{ start: Number(match[2]), count: Number(match[3]) }] : [];
  });
}

/** Whether one of the ranges holds the whole map. */
export function withinRanges(map: IdMap, ranges: readonly Range[]): boolean {
  return ranges.some((range) => map.host >= range.start && map.host + map.range <= range.start + range.count);
}

/**
 * Gives root `map` in each file where it has no range at all (a range root has is the administrator's
 * choice and is left alone). Returns the files it changed.
 */
export function ensureRootRanges(files: readonly string[] = SUBID_FILES, map: IdMap = DEFAULT_IDMAP): string[] {
  return files.filter((file) => {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (rootRanges(text).length > 0) return false;
    const separator = text === '' || text.endsWith('\n') ? '' : '\n';
    appendFileSync(file, `${separator}root:${formatIdMap(map)}\n`, { mode: 0o644 });
    return true;
  });
}

const NEWUIDMAP_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Refuses a map LXC would fail to set up at start: newuidmap is installed and root's ranges do not hold it. */
export function requireRootRanges(map: IdMap, files: readonly string[] = SUBID_FILES, shadow = NEWUIDMAP_DIRS.some((dir) => existsSync(`${dir}/newuidmap`))): void {
  if (!shadow) return;
  for (const file of files) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (!withinRanges(map, rootRanges(text))) {
      throw new UserError(
        `the map ${formatIdMap(map)} is not within root's ranges in ${file}, and LXC maps ids with newuidmap, which allows only those: ` +
          `run thin-lxc setup${map.host === DEFAULT_IDMAP.host && map.range === DEFAULT_IDMAP.range ? '' : ' and choose --idmap within its range'}, or add root:${formatIdMap(map)} to /etc/subuid and /etc/subgid`,
      );
    }
  }
}
