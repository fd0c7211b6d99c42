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

interface Entry extends Range {
  owner: string;
}

/** Every `owner:start:count` line of a subuid or subgid file. */
function entries(text: string): Entry[] {
  return text.split('\n').flatMap((line) => {
    const match = /^([^:\s]+):(\d+):(\d+)\s*$/.exec(line.trim());
    return match ? [{ owner: match[1]!, start: Number(match[2]), count: Number(match[3]) }] : [];
  });
}

const isRoot = (entry: Entry) => entry.owner === 'root' || entry.owner === '0';

/** root's ranges in a subuid or subgid file (`root:100000:65536`, or by id `0:100000:65536`). */
export function rootRanges(text: string): Range[] {
  return entries(text)
    .filter(isRoot)
    .map(({ start, count }) => ({ start, count }));
}

/** Other users' ranges that share ids with the map: their own user namespaces would run as the container's ids. */
export function othersOverlapping(map: IdMap, text: string): Entry[] {
  return entries(text).filter((entry) => !isRoot(entry) && entry.start < map.host + map.range && map.host < entry.start + entry.count);
}

/** `wanted` when no one has any of its ids in these files, else the first range as long above it that no one has. */
export function freeRange(texts: readonly string[], wanted: IdMap = DEFAULT_IDMAP): IdMap {
  const taken = texts.flatMap(entries);
  let host = wanted.host;
  // Each step moves past one taken range: at most as many steps as there are ranges.
  for (let step = 0; step <= taken.length; step++) {
    const clash = taken.find((entry) => entry.start < host + wanted.range && host < entry.start + entry.count);
    if (!clash) return { host, range: wanted.range };
    host = clash.start + clash.count;
  }
  return { host, range: wanted.range };
}

/** Whether one of the ranges holds the whole map. */
export function withinRanges(map: IdMap, ranges: readonly Range[]): boolean {
  return ranges.some((range) => map.host >= range.start && map.host + map.range <= range.start + range.count);
}

/**
 * Gives root a range in each file where it has none at all (a range root has is the administrator's choice and is
 * left alone): `map`, or where another user has some of its ids (the first user made on Debian and Ubuntu gets
 * 100000:65536), the first range as long above it that no one has in any of the files, the same in each.
 * Returns the files it changed and the range it gave.
 */
export function ensureRootRanges(files: readonly string[] = SUBID_FILES, map: IdMap = DEFAULT_IDMAP): { file: string; map: IdMap }[] {
  const texts = files.map((file) => (existsSync(file) ? readFileSync(file, 'utf8') : ''));
  const free = freeRange(texts, map);
  return files.flatMap((file, index) => {
    const text = texts[index]!;
    if (rootRanges(text).length > 0) return [];
    const separator = text === '' || text.endsWith('\n') ? '' : '\n';
    appendFileSync(file, `${separator}root:${formatIdMap(free)}\n`, { mode: 0o644 });
    return [{ file, map: free }];
  });
}

const NEWUIDMAP_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Refuses a map LXC would fail to set up at start: newuidmap is installed and root's ranges do not hold it. */
export function requireRootRanges(map: IdMap, files: readonly string[] = SUBID_FILES, shadow = NEWUIDMAP_DIRS.some((dir) => existsSync(`${dir}/newuidmap`))): void {
  if (!shadow) return;
  for (const file of files) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    // Another user's ids first: after setup gave root a range of its own elsewhere, that is what is wrong.
    const other = othersOverlapping(map, text)[0];
    if (other) {
      const roots = rootRanges(text).map((range) => `${range.start}:${range.count}`);
      throw new UserError(
        `the map ${formatIdMap(map)} shares ids with ${other.owner}'s subordinate ids ${other.start}:${other.count} in ${file}, so ${other.owner}'s own user namespaces would run as the container's ids: ` +
          `choose --idmap within a range of root's that no one else has (root has ${roots.join(', ') || 'none'} there; thin-lxc setup gives root one)`,
      );
    }
    if (!withinRanges(map, rootRanges(text))) {
      throw new UserError(
        `the map ${formatIdMap(map)} is not within root's ranges in ${file}, and LXC maps ids with newuidmap, which allows only those: ` +
          `run thin-lxc setup${map.host === DEFAULT_IDMAP.host && map.range === DEFAULT_IDMAP.range ? '' : ' and choose --idmap within its range'}, or add root:${formatIdMap(map)} to /etc/subuid and /etc/subgid`,
      );
    }
  }
}
