// What a thin container changed compared with its base, read from its write layer (overlayfs' upper dir).
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './exec.js';

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

/** Opaque directories, from their trusted.overlay.opaque attribute (Node has no getxattr). */
export function opaqueDirectories(wlayer: string): Set<string> {
  const result = run('getfattr', ['--absolute-names', '-R', '-h', '-m', '^trusted.overlay.opaque$', '-d', wlayer], { allowFailure: true });
  const opaque = new Set<string>();
  let file = '';
  for (const line of result.stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice('# file: '.length);
    else if (line.trim() === 'trusted.overlay.opaque="y"') opaque.add(file);
  }
  return opaque;
}

export function formatChanges(changes: readonly Change[]): string {
  return changes.map((change) => `${change.kind} ${change.path}`).join('\n');
}
