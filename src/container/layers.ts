// A thin container's layers as files: what create writes into the write layer so the container has its own
// hostname, and what the write layer holds compared with the base (thin-lxc diff).
import { chmodSync, chownSync, existsSync, mkdirSync, type Stats, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlockedPath, type EntryBeneath, listBeneath, lstatBeneath, readFileBeneath } from '../core/beneath.js';

export interface LayerFile {
  /** Relative to the rootfs, e.g. etc/hostname. */
  path: string;
  content: string;
}

/**
 * The file as the container would see it before any write: the top layer that has it. Layers are read
 * without following any symlink (root in a base container can make its etc a symlink to the host's /etc):
 * a symlink on the way, or a non-file, hides what is below and gives nothing.
 */
function readFromLayers(layers: readonly string[], path: string): string | undefined {
  for (const layer of layers) {
    try {
      const stat = lstatBeneath(layer, path);
      if (stat === null) continue; // not in this layer: look below
      if (!stat.isFile()) return undefined; // an overlayfs whiteout (deleted in that layer), a symlink, a directory
      return readFileBeneath(layer, path) ?? undefined;
    } catch (error) {
      if (error instanceof BlockedPath) return undefined;
      throw error;
    }
  }
  return undefined;
}

/** New /etc/hostname and /etc/hosts for the write layer, when the base has them. */
export function identityFiles(layers: readonly string[], name: string): LayerFile[] {
  const hostname = readFromLayers(layers, 'etc/hostname');
  if (hostname === undefined) return [];
  const files: LayerFile[] = [{ path: 'etc/hostname', content: `${name}\n` }];
  const oldName = hostname.trim();
  const hosts = readFromLayers(layers, 'etc/hosts');
  if (hosts !== undefined && oldName !== '' && oldName !== name) {
    // The base's hostname is anyone's text: every regex character escaped, so it matches only itself (and cannot hang).
    const word = new RegExp(`(?<=\\s)${oldName.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(?=\\s|$)`, 'gm');
    if (word.test(hosts)) files.push({ path: 'etc/hosts', content: hosts.replace(word, () => name) });
  }
  return files;
}

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  kind: ChangeKind;
  /** As seen inside the container. */
  path: string;
}

export interface LayerView {
  wlayer: string;
  /** The base's layers, top first. */
  layers: readonly string[];
  /** Directories overlayfs marked opaque (deleted and made again: nothing below shows through). */
  opaque: ReadonlySet<string>;
  /** Bind-mount points LXC made in the write layer: not changes of the container's own. */
  mountPoints: ReadonlySet<string>;
}

/**
 * A = added, C = changed (copied up from the base, or a directory made anew), D = deleted (a whiteout:
 * a 0/0 character device). Directories that only hold changes are not listed themselves.
 */
export function layerChanges(view: LayerView): Change[] {
  const changes: Change[] = [];
  const inBase = (path: string, hidden: boolean) => !hidden && view.layers.some((layer) => existsBeneath(layer, path));
  // Read through directory descriptors, never a path: a container that runs can swap a directory for a
  // symlink to the host's between two looks, and what is then listed is nothing of the host's.
  const walk = (relative: string, hidden: boolean) => {
    let entries: EntryBeneath[] | null;
    try {
      entries = listBeneath(view.wlayer, relative);
    } catch (error) {
      if (error instanceof BlockedPath) return; // made a symlink since it was seen as a directory
      throw error;
    }
    for (const { name, stat } of entries ?? []) {
      const path = relative === '' ? name : `${relative}/${name}`;
      if (view.mountPoints.has(path)) continue;
      const shown = `/${path}`;
      if (stat.isCharacterDevice() && stat.rdev === 0) {
        changes.push({ kind: 'D', path: shown });
      } else if (stat.isDirectory()) {
        const opaque = view.opaque.has(join(view.wlayer, path));
        const existed = inBase(path, hidden);
        if (!existed) changes.push({ kind: 'A', path: shown });
        else if (opaque) changes.push({ kind: 'C', path: shown });
        walk(path, hidden || opaque || !existed);
      } else {
        changes.push({ kind: inBase(path, hidden) ? 'C' : 'A', path: shown });
      }
    }
  };
  walk('', false);
  return changes;
}

/** Whether a layer has the path, not following symlinks (one on the way counts as not there). */
function existsBeneath(layer: string, path: string): boolean {
  return lstatOrNull(layer, path) !== null;
}

export function formatChanges(changes: readonly Change[]): string {
  return changes.map((change) => `${change.kind} ${change.path}`).join('\n');
}

/**
 * Writes a file into the write layer; a directory made on the way copies the mode and owner of the one it covers.
 * With `shift` (an unprivileged container's write layer, stored in its map), owners are HOSTID + the id they would
 * have had, as the container sees them: a layer in `shifted` is stored so already.
 */
export function writeLayerFile(wlayer: string, layers: readonly string[], file: LayerFile, shift: { host: number; shifted: readonly string[] } | null = null): void {
  const parts = file.path.split('/').slice(0, -1);
  for (let depth = 1; depth <= parts.length; depth++) {
    const relative = parts.slice(0, depth).join('/');
    const dir = join(wlayer, relative);
    if (existsSync(dir)) continue;
    mkdirSync(dir, { mode: 0o755 });
    const covered = layers.map((layer) => ({ layer, stat: lstatOrNull(layer, relative) })).find((found) => found.stat?.isDirectory());
    const by = shift && !shift.shifted.includes(covered?.layer ?? '') ? shift.host : 0;
    if (covered?.stat) {
      chmodSync(dir, covered.stat.mode & 0o7777);
      chownSync(dir, covered.stat.uid + by, covered.stat.gid + by);
    } else if (shift) {
      chownSync(dir, shift.host, shift.host);
    }
  }
  writeFileSync(join(wlayer, file.path), file.content, { mode: 0o644 });
  if (shift) chownSync(join(wlayer, file.path), shift.host, shift.host);
}

function lstatOrNull(layer: string, path: string): Stats | null {
  try {
    return lstatBeneath(layer, path);
  } catch (error) {
    if (error instanceof BlockedPath) return null;
    throw error;
  }
}
