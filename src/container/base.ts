// The base a thin container stacks on: its config lines, which of them a thin container keeps, and the
// read-only layers it is made of (one directory, or a snapshot's or thin container's whole stack).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../core/errors.js';
import { quote, validateName, validatePlainPath } from '../core/validate.js';
import { type ConfigEntry, formatEntry, lastValue, parseLxcConfig } from '../lxc/config.js';
import { thinHookOf } from '../lxc/install.js';
import { readState, STATE_FILE, type ThinState } from '../state/state.js';

export interface Base {
  /** As the user knows it: the LXC name, or the directory's name when given by path. */
  name: string;
  dir: string;
  configPath: string;
  /** The base's settings that a thin container keeps (network, includes, capabilities, cgroups, ttys, apparmor). */
  entries: ConfigEntry[];
  /** Read-only layers, top first. */
  layers: string[];
  /**
   * An unprivileged base (a thin container made --unprivileged, or an LXC container with lxc.idmap lines): its
   * map (HOSTID:RANGE) and the layers stored in it, owned by its ids on disk; null for a privileged base.
   */
  stored: { kind: 'thin' | 'lxc'; idmap: string; layers: string[] } | null;
}

/** BASE is an LXC container's name (looked up in `lxcpath`) or the path to its directory. */
export function resolveBase(spec: string, lxcpath: string, cwd: string): Base {
  const byPath = spec.includes('/');
  const dir = byPath ? resolve(cwd, spec) : join(lxcpath, validateName(spec, 'base'));
  const configPath = join(dir, 'config');
  if (!isFile(configPath)) {
    throw new UserError(
      `base ${quote(spec)} is not an LXC container: ${configPath} does not exist; ` +
        `make one with lxc-create -t busybox -n ${byPath ? 'NAME' : spec}, or pass an existing container's name or directory`,
    );
  }
  const entries = flattenThinIncludes(parseLxcConfig(readFileSync(configPath, 'utf8')));
  const rootfsPath = lastValue(entries, 'lxc.rootfs.path');
  if (!rootfsPath) throw new UserError(`base ${quote(spec)} has no lxc.rootfs.path in ${configPath}: it cannot be a base`);

  const thin = thinBase(rootfsPath, spec);
  const layers = thin?.layers ?? rootfsLayers(rootfsPath, configPath);
  for (const layer of layers) {
    validatePlainPath(layer, 'base layer', 'move the base to a plain path, e.g. with lxc-copy');
    if (!isDirectory(layer)) {
      throw new UserError(`base ${quote(spec)}: its rootfs ${layer} is not a directory; is the base complete?`);
    }
  }
  const stored = thin
    ? thin.state.idmap === null
      ? null
      : { kind: 'thin' as const, idmap: thin.state.idmap, layers: [layers[0]!, ...thin.state.shifted] }
    : lxcIdMap(entries, spec, layers);
  return { name: byPath ? basename(dir) : spec, dir, configPath, entries: entries.filter(keptByThinContainer), layers, stored };
}

/**
 * An unprivileged LXC container as base: its rootfs is owned by its map's ids. thin-lxc stacks on one map of uids
 * and gids alike from 0 (what lxc-create makes); anything else it cannot show rightly, and refuses.
 */
function lxcIdMap(entries: readonly ConfigEntry[], spec: string, layers: string[]): Base['stored'] {
  const lines = entries.filter((entry) => entry.key === 'lxc.idmap').map((entry) => entry.value.trim().split(/\s+/));
  if (lines.length === 0) return null;
  const [u, g] = [lines.find((line) => line[0] === 'u'), lines.find((line) => line[0] === 'g')];
  if (lines.length !== 2 || !u || !g || u[1] !== '0' || g[1] !== '0' || u[2] !== g[2] || u[3] !== g[3] || !/^\d+$/.test(u[2] ?? '') || !/^\d+$/.test(u[3] ?? '')) {
    throw new UserError(
      `base ${quote(spec)} maps its ids in a way thin-lxc cannot stack on (${lines.map((line) => `lxc.idmap = ${line.join(' ')}`).join('; ')}): ` +
        'use a base with one map for uids and gids from 0 (u 0 HOSTID RANGE and g 0 HOSTID RANGE), or a privileged base',
    );
  }
  return { kind: 'lxc', idmap: `${u[2]}:${u[3]}`, layers };
}

/**
 * A thin container registered with LXC has a one-line config that includes its real one; read
 * through it, so that a thin container used as a base gives its settings and not its hooks.
 */
function flattenThinIncludes(entries: ConfigEntry[]): ConfigEntry[] {
  return entries.flatMap((entry) => {
    if (entry.key !== 'lxc.include' || !isThinImageConfig(entry.value)) return [entry];
    return parseLxcConfig(readFileSync(entry.value, 'utf8'));
  });
}

function isThinImageConfig(path: string): boolean {
  return basename(path) === 'config' && existsSync(join(dirname(dirname(path)), STATE_FILE));
}

/**
 * A thin container as base: its write layer on top of its own layers. Not an ephemeral one: its stop would
 * remove layers its thin containers stand on.
 */
function thinBase(rootfsPath: string, spec: string): { layers: string[]; state: ThinState } | undefined {
  const path = rootfsPath.replace(/^dir:/, '');
  const containerDir = dirname(dirname(path));
  if (basename(path) !== 'rootfs' || !existsSync(join(containerDir, STATE_FILE))) return undefined;
  const state = readState(containerDir);
  if (state.ephemeral) {
    throw new UserError(
      `base ${quote(spec)} is an ephemeral thin container (destroyed when it stops), which cannot be a base: ` +
        `stack on its base ${state.baseName} instead, or make one without --ephemeral`,
    );
  }
  if (state.diskMode === 'image') {
    throw new UserError(
      `base ${quote(spec)} keeps its write layer in a disk image (--disk), which only its own start mounts: ` +
        `commit it (thin-lxc commit ${state.name} NEW) and stack on NEW`,
    );
  }
  return { layers: [join(containerDir, 'wlayer'), ...state.layers], state };
}

/**
 * What is the base's identity rather than its settings is left out: the rootfs, the hostname,
 * MAC and IP addresses, logging, autostart, thin-lxc's own hooks (a thin base would mount its own layers), and
 * an unprivileged base's map and monitor namespace (the thin container's own --unprivileged decides those).
 */
export function keptByThinContainer({ key, value }: ConfigEntry): boolean {
  if (/^lxc\.(rootfs\.path|uts\.name|hook\.version|log\.file|start\.|idmap$|monitor\.unshare$)/.test(key)) return false;
  if (/^lxc\.net\.\d+\.(hwaddr|ipv4\.address|ipv4\.gateway|ipv6\.address|ipv6\.gateway|veth\.pair)$/.test(key)) return false;
  if (key.startsWith('lxc.hook.') && thinHookOf(value) !== null) return false;
  return true;
}

export function baseConfigLines(base: Base): string[] {
  return base.entries.map(formatEntry);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Layers, top first (overlayfs' lowerdir order). A plain directory is one layer; an overlay
 * rootfs (`overlay:LOWER:UPPER`, what `lxc-copy -s` makes) is its whole stack, upper on top.
 */
export function rootfsLayers(rootfsPath: string, baseConfig: string): string[] {
  const colon = rootfsPath.indexOf(':');
  const type = colon > 0 && !rootfsPath.startsWith('/') ? rootfsPath.slice(0, colon) : 'dir';
  const rest = type === 'dir' && !rootfsPath.startsWith('dir:') ? rootfsPath : rootfsPath.slice(colon + 1);
  switch (type) {
    case 'dir':
    case 'btrfs': // a subvolume is a directory the host already sees
      return [rest];
    case 'overlay':
    case 'overlayfs':
    case 'aufs':
      return rest.split(':').reverse();
    default:
      throw new UserError(
        `base rootfs ${quote(rootfsPath)} (in ${baseConfig}) is on ${type} storage, which thin-lxc cannot stack on: ` +
          'use a base made with the dir backend (lxc-create -B dir) or an overlay snapshot (lxc-copy -s)',
      );
  }
}
