// The on-disk layout of one thin container and its state file, and finding containers in a root.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parse } from 'ini';
import { UserError } from './errors.js';
import { fileIdentity, loadStateCache, saveStateCache, type StateCache } from './state-cache.js';
import { quote } from './validate.js';
import type { UnionFs } from './union.js';

export const STATE_FILE = 'thin-lxc.ini';

export interface ContainerPaths {
  dir: string;
  image: string;
  config: string;
  rootfs: string;
  wlayer: string;
  work: string;
  state: string;
  hookLog: string;
}

/** The original's layout (`<root>/<id>/image/{config,rootfs}`, `<root>/<id>/wlayer`) plus overlayfs' workdir and our state. */
export function containerPaths(root: string, id: string): ContainerPaths {
  // One join; the rest are plain names under it (list builds these for every container).
  const dir = join(root, id);
  const image = `${dir}/image`;
  return {
    dir,
    image,
    config: `${image}/config`,
    rootfs: `${image}/rootfs`,
    wlayer: `${dir}/wlayer`,
    work: `${dir}/work`,
    state: `${dir}/${STATE_FILE}`,
    hookLog: `${dir}/hook.log`,
  };
}

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
  /** The host side of lxc.net.0's veth pair, named so that hooks can find it. */
  veth: string | null;
  publish: string[];
  mounts: string[];
  lxcpath: string;
  created: string;
}

/**
 * Every value is written as a JSON string literal: ini reads those back exactly, where a bare value can
 * change on the way (`true`, `false` and `null` become other types, backslashes before `;` or `#` go,
 * a U+2028 hides the whole line). ini still turns the *unquoted* text of a literal "true" into a boolean,
 * which parseState undoes: every field of a state is a string.
 */
export function serializeState(state: ThinState): string {
  const { hwaddrs, ip, bridge, subnet, veth, layers, publish, mounts, ...scalars } = state;
  const line = (key: string, value: string) => `${key} = ${jsonString(value)}`;
  const lines = [
    ...Object.entries({ ...scalars, ip: ip ?? '', bridge: bridge ?? '', subnet: subnet ?? '', veth: veth ?? '' }).map(([key, value]) => line(key, value)),
    ...Object.entries({ layers, publish, mounts }).flatMap(([key, values]) => values.map((value) => line(`${key}[]`, value))),
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
  const fsOf = (key: string): UnionFs => {
    const value = text_(key);
    if (value !== 'overlay' && value !== 'aufs') throw damaged(key);
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
    veth: optional('veth'),
    publish: list('publish'),
    mounts: list('mounts'),
    lxcpath: text_('lxcpath'),
    created: text_('created'),
  };
}

export function readState(dir: string): ThinState {
  const path = join(dir, STATE_FILE);
  return parseState(readFileSync(path, 'utf8'), path);
}

export interface ThinContainer {
  state: ThinState;
  paths: ContainerPaths;
}

/** Every thin container under `root`; directories being built or removed (dot-prefixed) are not containers yet. */
export function listContainers(root: string): ThinContainer[] {
  const containers: ThinContainer[] = [];
  const cached = loadStateCache(root);
  const seen: StateCache = new Map();
  let misses = 0;
  // Directory entries carry their type: a symlink is not a container, and no lstat per entry is needed to know.
  for (const id of directoriesOf(root)) {
    if (id.startsWith('.')) continue;
    const paths = containerPaths(root, id);
    try {
      const identity = fileIdentity(paths.state);
      const hit = cached.get(id);
      if (hit?.identity !== identity) misses++;
      const state = hit?.identity === identity ? hit.state : parseState(readFileSync(paths.state, 'utf8'), paths.state);
      seen.set(id, { identity, state });
      containers.push({ state, paths });
    } catch {
      // Not a thin container (or one whose state cannot be read): list shows only what it can vouch for.
    }
  }
  // Rewriting the cache costs more than parsing a few new states, so it is rewritten once a few have come or gone.
  const gone = [...cached.keys()].filter((id) => !seen.has(id)).length;
  const first = cached.size === 0 && seen.size > 0;
  const emptied = seen.size === 0 && cached.size > 0;
  if (first || emptied || misses + gone >= CACHE_REWRITE_AFTER) saveStateCache(root, seen);
  return containers;
}

const CACHE_REWRITE_AFTER = 8;

/** The real directories (not symlinks) in `dir`, sorted; none when it does not exist (yet). */
function directoriesOf(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
  } catch {
    return [];
  }
}

/** The names in a directory; none when it does not exist (yet). */
export function entriesOf(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * A thin container by id or name in `root`; failing that, by the LXC registration of that name in
 * `lxcpath`, which says where it lives (a container made under another --root).
 */
export function findContainer(root: string, idOrName: string, lxcpath?: string): ThinContainer {
  const all = listContainers(root);
  const found =
    all.find((c) => c.state.id === idOrName) ??
    all.find((c) => c.state.name === idOrName) ??
    (lxcpath === undefined ? undefined : registeredContainer(lxcpath, idOrName));
  if (!found) {
    throw new UserError(`no thin container with id or name ${quote(idOrName)} in ${root}: see thin-lxc list (or pass --root)`);
  }
  return found;
}

/** The thin container LXC's registration `lxcpath/name/config` includes (`lxc.include = DIR/image/config`), if it is one. */
export function registeredContainer(lxcpath: string, name: string): ThinContainer | undefined {
  let text: string;
  try {
    text = readFileSync(join(lxcpath, name, 'config'), 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const include = /^\s*lxc\.include\s*=\s*(\S+)\/image\/config\s*$/.exec(line)?.[1];
    if (!include) continue;
    try {
      const state = readState(include);
      if (state.name === name) return { state, paths: containerPaths(dirname(include), basename(include)) };
    } catch {
      // Not a thin container's config, or a damaged one: nothing to act on.
    }
  }
  return undefined;
}

/**
 * Every thin container thin-lxc can know of: those in the root, and those registered in the lxcpath from
 * other roots. What reload, doctor and refresh act on.
 */
export function knownContainers(root: string, lxcpath: string): ThinContainer[] {
  const inRoot = listContainers(root);
  const dirs = new Set(inRoot.map((container) => container.paths.dir));
  const elsewhere = directoriesOf(lxcpath)
    .map((name) => registeredContainer(lxcpath, name))
    .filter((container): container is ThinContainer => container !== undefined && !dirs.has(container.paths.dir));
  return [...inRoot, ...elsewhere];
}

export function isRealDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Thin containers stacked on this one (it is their base). */
export function dependentsOf(containerDir: string): ThinState[] {
  const wlayer = join(containerDir, 'wlayer');
  return listContainers(dirname(containerDir))
    .map((container) => container.state)
    .filter((state) => state.layers.includes(wlayer));
}
