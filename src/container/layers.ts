// A thin container's layers as files: what create writes into the write layer so the container has its own
// hostname, and what the write layer holds compared with the base (thin-lxc diff).
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LayerFile {
  /** Relative to the rootfs, e.g. etc/hostname. */
  path: string;
  content: string;
}

/** The file as the container would see it before any write: the top layer that has it. */
function readFromLayers(layers: readonly string[], path: string): string | undefined {
  for (const layer of layers) {
    const full = join(layer, path);
    try {
      const stat = lstatSync(full);
      if (stat.isCharacterDevice()) return undefined; // an overlayfs whiteout: deleted in that layer
      if (stat.isFile()) return readFileSync(full, 'utf8');
    } catch {
      // Not in this layer: look below.
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
    const word = new RegExp(`(?<=\\s)${oldName.replace(/[.]/g, '\\.')}(?=\\s|$)`, 'gm');
    if (word.test(hosts)) files.push({ path: 'etc/hosts', content: hosts.replace(word, name) });
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
  const inBase = (path: string, hidden: boolean) => !hidden && view.layers.some((layer) => existsSync(join(layer, path)));
  const walk = (relative: string, hidden: boolean) => {
    for (const entry of readdirSync(join(view.wlayer, relative)).sort()) {
      const path = relative === '' ? entry : `${relative}/${entry}`;
      if (view.mountPoints.has(path)) continue;
      const stat = lstatSync(join(view.wlayer, path));
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

export function formatChanges(changes: readonly Change[]): string {
  return changes.map((change) => `${change.kind} ${change.path}`).join('\n');
}

/** Writes a file into the write layer; a directory made on the way copies the mode and owner of the one it covers. */
export function writeLayerFile(wlayer: string, layers: readonly string[], file: LayerFile): void {
  const parts = file.path.split('/').slice(0, -1);
  for (let depth = 1; depth <= parts.length; depth++) {
    const relative = parts.slice(0, depth).join('/');
    const dir = join(wlayer, relative);
    if (existsSync(dir)) continue;
    mkdirSync(dir, { mode: 0o755 });
    const below = layers.map((layer) => join(layer, relative)).find((path) => existsSync(path));
    if (below) {
      const stat = statSync(below);
      chmodSync(dir, stat.mode & 0o7777);
      chownSync(dir, stat.uid, stat.gid);
    }
  }
  writeFileSync(join(wlayer, file.path), file.content, { mode: 0o644 });
}
