// Subordinate ids (/etc/subuid, /etc/subgid): where newuidmap and newgidmap are installed, LXC maps an unprivileged
// container's ids with them, and they allow root only the ranges these files give it.
import { chmodSync, chownSync, closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAlive } from '../core/exec.js';
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
 * The map unprivileged containers get by default: root's first range of at least DEFAULT_IDMAP.range ids in the
 * subuid text that its subgid ranges hold too (setup may have given root another range than 100000, when a user
 * had that), else DEFAULT_IDMAP.
 */
export function rootDefaultMap(uidText: string, gidText: string): IdMap {
  const gid = rootRanges(gidText);
  const found = rootRanges(uidText)
    .map((range) => ({ host: range.start, range: DEFAULT_IDMAP.range }))
    .find((map) => withinRanges(map, rootRanges(uidText)) && withinRanges(map, gid));
  return found ?? DEFAULT_IDMAP;
}

/** The default map as read from the host's files (DEFAULT_IDMAP where they are missing). */
export function hostDefaultMap(files: readonly string[] = SUBID_FILES): IdMap {
  const [uid, gid] = files.map(readIfPresent);
  return rootDefaultMap(uid ?? '', gid ?? '');
}

/**
 * What setup adds, from the files' texts (subuid, subgid): nothing where root already has a range of
 * DEFAULT_IDMAP.range ids in both; else a range that shares no id with another user's line in either file: one root
 * holds in one file only, or freeRange's.
 */
export function plannedRootRange(uidText: string, gidText: string): IdMap | null {
  const map = rootDefaultMap(uidText, gidText);
  if (withinRanges(map, rootRanges(uidText)) && withinRanges(map, rootRanges(gidText))) return null;
  const free = (candidate: IdMap) => othersOverlapping(candidate, uidText).length === 0 && othersOverlapping(candidate, gidText).length === 0;
  // A range root holds in one file only is completed in the other first.
  const own = [...rootRanges(uidText), ...rootRanges(gidText)].filter((range) => range.count >= DEFAULT_IDMAP.range).map((range) => ({ host: range.start, range: DEFAULT_IDMAP.range }));
  const mine = own.find(free);
  if (mine) return mine;
  const found = freeRange([uidText, gidText]);
  // 2^32 - 1 is the kernel's invalid id: every range ends below it.
  if (found.host + found.range >= 2 ** 32 - 1) throw new UserError(`no range of ${DEFAULT_IDMAP.range} ids is free in ${SUBID_FILES.join(' and ')}: give root one by hand (root:HOSTID:RANGE in both files)`);
  return found;
}

/**
 * Gives root a range nobody else holds in both files where it has none big enough (plannedRootRange), under
 * shadow's locks (FILE.lock, as useradd and usermod take them) and by rename, so a concurrent useradd neither
 * loses our line nor has its own lost. Returns the range and the files it changed.
 */
export function ensureRootRanges(files: readonly [string, string] = SUBID_FILES): { file: string; map: IdMap }[] {
  return withShadowLocks(files, () => {
    const [uid, gid] = files.map((file) => readIfPresent(file) ?? '') as [string, string];
    const map = plannedRootRange(uid, gid);
    if (map === null) return [];
    return files.flatMap((file, index) => {
      const text = index === 0 ? uid : gid;
      if (withinRanges(map, rootRanges(text))) return [];
      const separator = text === '' || text.endsWith('\n') ? '' : '\n';
      replaceFile(file, `${text}${separator}root:${formatIdMap(map)}\n`);
      return [{ file, map }];
    });
  });
}

function readIfPresent(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/** Writes beside the file and renames over it, with the file's mode and owner (0644 root's for a new one). */
function replaceFile(file: string, content: string): void {
  const before = existsSync(file) ? statSync(file) : { mode: 0o644, uid: 0, gid: 0 };
  const temporary = `${file}+`;
  try {
    writeFileSync(temporary, content, { mode: before.mode & 0o7777, flag: 'w' });
    chownSync(temporary, before.uid, before.gid);
    chmodSync(temporary, before.mode & 0o7777); // past the umask
    const fd = openSync(temporary, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, file);
  } finally {
    rmSync(temporary, { force: true });
  }
}

/**
 * shadow's lock protocol (lib/commonio.c): FILE.PID holding our pid, hard-linked to FILE.lock; a lock whose pid is
 * gone is stale and removed. A live holder (useradd, usermod, vipw) makes setup refuse, to be run again.
 */
function withShadowLocks<T>(files: readonly string[], work: () => T): T {
  const held: string[] = [];
  try {
    for (const file of files) {
      lockShadowFile(file);
      held.push(`${file}.lock`);
    }
    return work();
  } finally {
    for (const lock of held.reverse()) rmSync(lock, { force: true });
  }
}

function lockShadowFile(file: string): void {
  const mine = `${file}.${process.pid}`;
  const lock = `${file}.lock`;
  writeFileSync(mine, `${process.pid}`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        linkSync(mine, lock);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = Number.parseInt(readIfPresent(lock) ?? '', 10);
      if (isAlive(holder)) throw new UserError(`${file} is locked by pid ${holder} (${lock}), which is changing it: run thin-lxc setup again once it is done`);
      rmSync(lock, { force: true }); // stale: its writer is gone
    }
    throw new UserError(`cannot lock ${file}: ${lock} keeps coming back; run thin-lxc setup again`);
  } finally {
    rmSync(mine, { force: true });
  }
}

const NEWUIDMAP_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * Refuses a map sharing ids with another user's range (whether LXC maps with newuidmap or not), and one LXC would
 * fail to set up at start: newuidmap is installed and root's ranges do not hold it.
 */
export function requireRootRanges(map: IdMap, files: readonly string[] = SUBID_FILES, shadow = NEWUIDMAP_DIRS.some((dir) => existsSync(`${dir}/newuidmap`))): void {
  for (const file of files) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    // Another user's ids first, newuidmap or not (LXC without it writes any map): they are what is wrong.
    const other = othersOverlapping(map, text)[0];
    if (other) {
      const roots = rootRanges(text).map((range) => `${range.start}:${range.count}`);
      throw new UserError(
        `the map ${formatIdMap(map)} shares ids with ${other.owner}'s subordinate ids ${other.start}:${other.count} in ${file}, so ${other.owner}'s own user namespaces would run as the container's ids: ` +
          `choose --idmap within a range of root's that no one else has (root has ${roots.join(', ') || 'none'} there; ${roots.length > 0 ? "remove root's lines that share others' ids from /etc/subuid and /etc/subgid, then " : ''}thin-lxc setup gives root one)`,
      );
    }
    if (shadow && !withinRanges(map, rootRanges(text))) {
      throw new UserError(
        `the map ${formatIdMap(map)} is not within root's ranges in ${file}, and LXC maps ids with newuidmap, which allows only those: ` +
          `run thin-lxc setup${map.host === DEFAULT_IDMAP.host && map.range === DEFAULT_IDMAP.range ? '' : ' and choose --idmap within its range'}, or add root:${formatIdMap(map)} to /etc/subuid and /etc/subgid`,
      );
    }
  }
}
