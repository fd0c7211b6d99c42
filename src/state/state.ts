// A thin container's state: what thin-lxc knows of it (ThinState), its file (<dir>/thin-lxc.ini), and the
// parsed-state cache of a root.
import { lstatSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'ini';
import { UserError } from '../core/errors.js';
import type { DiskMode } from '../union/disk.js';
import type { UnionFs } from '../union/mount.js';

export const STATE_FILE = 'thin-lxc.ini';

export interface ThinState {
  id: string;
  name: string;
  /** The base container's directory, and its name as the user knows it. */
  base: string;
  baseName: string;
  fs: UnionFs;
  /** Read-only layers, top first. */
  layers: string[];
  /** MAC address per LXC network index. */
  hwaddrs: Record<string, string>;
  ip: string | null;
  /** The bridge lxc.net.0 attaches to and its subnet (CIDR), when the container has a static address. */
  bridge: string | null;
  subnet: string | null;
  /** Its static IPv6 address and the bridge's IPv6 network (CIDR), when the bridge had IPv6 at create. */
  ip6: string | null;
  subnet6: string | null;
  /** The host side of lxc.net.0's veth pair, named so that hooks can find it. */
  veth: string | null;
  publish: string[];
  mounts: string[];
  lxcpath: string;
  created: string;
  /** lxc.start.auto: started by lxc-autostart at boot. */
  autostart: boolean;
  /** Destroyed, with its registration, once it stops (the post-stop hook, or the next thin-lxc command after a crash). */
  ephemeral: boolean;
  /** The write layer's tmpfs size (e.g. 512M, 50%) when it lives in memory, empty at every start; null on disk. */
  tmpfs: string | null;
  /** Resource limits: memory in bytes, CPUs as a decimal (CFS quota per 100 ms period). */
  memory: string | null;
  cpus: string | null;
  /** sha256 of the template given with --template; null for the default template. */
  template: string | null;
  /** --disk: the write layer's limit in bytes, and how it is kept (what removal undoes); all null without one. */
  disk: string | null;
  diskMode: DiskMode | null;
  /** quota: the project id given to wlayer and work, and the mount point of the filesystem the limit is on. */
  diskProject: string | null;
  diskMount: string | null;
  /**
   * Unprivileged: the map of its user namespace as HOSTID:RANGE (its root is HOSTID on the host); null for a
   * privileged container.
   */
  idmap: string | null;
  /**
   * Layers stored already in this container's map (an unprivileged thin base's write layer, made with the same
   * map): used as they are, where the others are shown through an idmapped mount.
   */
  shifted: string[];
}

/**
 * Every value is written as a JSON string literal: ini reads those back exactly, where a bare value can
 * change on the way (`true`, `false` and `null` become other types, backslashes before `;` or `#` go,
 * a U+2028 hides the whole line). ini still turns the *unquoted* text of a literal "true" into a boolean,
 * which parseState undoes: every field of a state is a string.
 */
export function serializeState(state: ThinState): string {
  const { hwaddrs, layers, publish, mounts, shifted, ...scalars } = state;
  const line = (key: string, value: string) => `${key} = ${jsonString(value)}`;
  const lines = [
    ...Object.entries(scalars).map(([key, value]) => line(key, value === null ? '' : String(value))),
    ...Object.entries({ layers, publish, mounts, shifted }).flatMap(([key, values]) => values.map((value) => line(`${key}[]`, value))),
    '',
    '[hwaddr]',
    ...Object.entries(hwaddrs).map(([index, mac]) => line(index, mac)),
  ];
  return `${lines.join('\n')}\n`;
}

/** JSON leaves U+2028 and U+2029 unescaped, and ini's line pattern stops at them. */
function jsonString(value: string): string {
  return JSON.stringify(value).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export function parseState(text: string, source: string): ThinState {
  const raw = parse(text) as Record<string, unknown>;
  const damaged = (key: string) => new UserError(`${source} has no valid ${key}: the state file is damaged`);
  // ini makes the text true, false and null into those values even inside quotes: they were strings.
  const asText = (value: unknown) => (typeof value === 'string' ? value : typeof value === 'boolean' || value === null ? String(value) : undefined);
  const text_ = (key: string) => {
    const value = asText(raw[key]);
    if (value === undefined || value === '') throw damaged(key);
    return value;
  };
  const optional = (key: string) => {
    const value = asText(raw[key]);
    return value === undefined || value === '' ? null : value;
  };
  const list = (key: string) => {
    const value = raw[key];
    if (value === undefined) return [];
    const items = Array.isArray(value) ? value.map(asText) : [];
    if (items.length === 0 || items.some((item) => item === undefined)) throw damaged(key);
    return items as string[];
  };
  const hwaddr = raw.hwaddr;
  const hwaddrs: Record<string, string> = {};
  if (hwaddr !== undefined) {
    if (typeof hwaddr !== 'object' || hwaddr === null || Array.isArray(hwaddr)) throw damaged('hwaddr');
    for (const [index, mac] of Object.entries(hwaddr)) {
      const value = asText(mac);
      if (value === undefined) throw damaged('hwaddr');
      hwaddrs[index] = value;
    }
  }
  const flag = (key: string) => {
    const value = optional(key);
    if (value !== null && value !== 'true' && value !== 'false') throw damaged(key);
    return value === 'true';
  };
  const fsOf = (key: string): UnionFs => {
    const value = text_(key);
    if (value !== 'overlay' && value !== 'aufs') throw damaged(key);
    return value;
  };
  const idmapOf = (key: string) => {
    const value = optional(key);
    if (value !== null && !/^\d{1,10}:\d{1,10}$/.test(value)) throw damaged(key);
    return value;
  };
  return {
    id: text_('id'),
    name: text_('name'),
    base: text_('base'),
    baseName: text_('baseName'),
    fs: fsOf('fs'),
    layers: list('layers'),
    hwaddrs,
    ip: optional('ip'),
    bridge: optional('bridge'),
    subnet: optional('subnet'),
    ip6: optional('ip6'),
    subnet6: optional('subnet6'),
    veth: optional('veth'),
    publish: list('publish'),
    mounts: list('mounts'),
    lxcpath: text_('lxcpath'),
    created: text_('created'),
    // Absent from states written before thin-lxc 0.3: those containers had none of these.
    autostart: flag('autostart'),
    ephemeral: flag('ephemeral'),
    tmpfs: optional('tmpfs'),
    memory: optional('memory'),
    cpus: optional('cpus'),
    template: optional('template'),
    ...diskOf(optional('disk'), optional('diskMode'), optional('diskProject'), optional('diskMount'), damaged),
    // Absent from states written before unprivileged containers: those were privileged.
    idmap: idmapOf('idmap'),
    shifted: list('shifted'),
  };
}

/** A limit comes with its mode, and a quota with its project and filesystem: anything else is damage. */
function diskOf(disk: string | null, mode: string | null, project: string | null, mount: string | null, damaged: (key: string) => Error): Pick<ThinState, 'disk' | 'diskMode' | 'diskProject' | 'diskMount'> {
  if (disk === null && mode === null && project === null && mount === null) return { disk, diskMode: null, diskProject: null, diskMount: null };
  if (disk === null || !/^\d+$/.test(disk)) throw damaged('disk');
  if (mode === 'image' && project === null && mount === null) return { disk, diskMode: 'image', diskProject: null, diskMount: null };
  if (mode !== 'quota') throw damaged('diskMode');
  if (project === null || !/^\d+$/.test(project)) throw damaged('diskProject');
  if (mount === null || !mount.startsWith('/')) throw damaged('diskMount');
  return { disk, diskMode: 'quota', diskProject: project, diskMount: mount };
}

export function readState(dir: string): ThinState {
  const path = join(dir, STATE_FILE);
  return parseState(readFileSync(path, 'utf8'), path);
}

/*
 * The parsed-state cache: a root's thin-lxc.ini files, parsed, in <root>/.thin-lxc-states.json under each
 * file's identity (inode, size, ctime). A state is parsed again when its file is not the one cached; create
 * writes a state once, by renaming a new directory into place, so a changed file has a new identity.
 * Measured when it was judged again: create in a root of 200 containers takes 66 ms with it and 74-80 ms
 * without (~12%); with a few containers it makes no difference.
 */
const CACHE_FILE = '.thin-lxc-states.json';
/** Bump when ThinState or parseState changes: a cache of another format is ignored. */
const FORMAT = 6;

type StateCache = Map<string, { identity: string; state: ThinState }>;

/** What changes whenever a file is replaced or written: ctime cannot be set back by a user. */
function fileIdentity(path: string): string {
  const stat = lstatSync(path);
  if (!stat.isFile()) throw new Error(`${path} is not a regular file`);
  return `${stat.ino}:${stat.size}:${stat.ctimeMs}`;
}

function loadStateCache(root: string): StateCache {
  try {
    const saved = JSON.parse(readFileSync(join(root, CACHE_FILE), 'utf8')) as { format?: unknown; entries?: unknown };
    if (saved.format !== FORMAT || !Array.isArray(saved.entries)) return new Map();
    return new Map(saved.entries as [string, { identity: string; state: ThinState }][]);
  } catch {
    return new Map();
  }
}

/**
 * Best effort: a user without write access to the root (list as non-root) just parses next time too.
 * A root with no containers keeps no cache, so that it is left as empty as it was found.
 */
function saveStateCache(root: string, cache: StateCache): void {
  const path = join(root, CACHE_FILE);
  const staging = `${path}.${process.pid}`;
  try {
    if (cache.size === 0) {
      rmSync(path, { force: true });
      return;
    }
    writeFileSync(staging, JSON.stringify({ format: FORMAT, entries: [...cache] }), { mode: 0o644 });
    renameSync(staging, path);
  } catch {
    // Nothing is lost: the states themselves are the truth. A write cut short (a full disk) leaves nothing either.
    rmSync(staging, { force: true });
  }
}

/** Rewriting the cache costs more than parsing a few new states, so it is rewritten once a few came or went. */
const REWRITE_AFTER = 8;

/**
 * Reads states through the cache. save() writes what was read, when enough changed; only commands that
 * change the root call it (read commands write nothing), and a root left with no container keeps no cache.
 */
export function stateReader(root: string): { read(id: string, path: string): ThinState; save(): void } {
  const cached = loadStateCache(root);
  const seen: StateCache = new Map();
  let misses = 0;
  return {
    read(id, path) {
      const identity = fileIdentity(path);
      const hit = cached.get(id);
      if (hit?.identity !== identity) misses++;
      const state = hit?.identity === identity ? hit.state : parseState(readFileSync(path, 'utf8'), path);
      seen.set(id, { identity, state });
      return state;
    },
    save() {
      const gone = [...cached.keys()].filter((id) => !seen.has(id)).length;
      const first = cached.size === 0 && seen.size > 0;
      const emptied = seen.size === 0 && cached.size > 0;
      if (first || emptied || misses + gone >= REWRITE_AFTER) saveStateCache(root, seen);
    },
  };
}
