// Where thin containers are: finding them in a root, or through their LXC registrations, and what stands on one.
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../core/errors.js';
import { quote } from '../core/validate.js';
import { registrationDir } from '../lxc/lxcpath.js';
import { listedDependents } from '../lxc/snapshots.js';
import { readState, stateReader, type ThinState } from '../state/state.js';
import { containerPaths, type ThinContainer } from '../state/paths.js';

/**
 * Every thin container under `root`; directories being built or removed (dot-prefixed) are not containers
 * yet. Reads only: the parsed-state cache is brought up to date by the commands that change the root.
 */
export function listContainers(root: string): ThinContainer[] {
  return listWithStates(root).containers;
}

/** After a create or destroy changed the root: the parsed-state cache catches up, if it fell behind. */
export function refreshStateCache(root: string): void {
  listWithStates(root).saveCache();
}

/**
 * The root's containers, for a command that then adds some (create): `saveCache` brings the parsed-state cache up to
 * date with them and the added ones (by id), without listing the root again as refreshStateCache does. What else
 * changed in between costs nothing but a parse later: every cached state is checked against its file when read.
 */
export function listContainersToAdd(root: string): { containers: ThinContainer[]; saveCache: (added: readonly string[]) => void } {
  return listWithStates(root);
}

function listWithStates(root: string): { containers: ThinContainer[]; saveCache: (added?: readonly string[]) => void } {
  const reader = stateReader(root);
  const containers: ThinContainer[] = [];
  // Directory entries carry their type: a symlink is not a container, and no lstat per entry is needed to know.
  for (const id of directoriesOf(root)) {
    if (id.startsWith('.')) continue;
    const paths = containerPaths(root, id);
    try {
      containers.push({ state: reader.read(id, paths.state), paths });
    } catch {
      // Not a thin container (or one whose state cannot be read): list shows only what it can vouch for.
    }
  }
  const saveCache = (added: readonly string[] = []) => {
    for (const id of added) {
      try {
        reader.read(id, containerPaths(root, id).state);
      } catch {
        // Gone already, or unreadable: listed (and cached) next time, if it is a container then.
      }
    }
    reader.save();
  };
  return { containers, saveCache };
}

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
function registeredContainer(lxcpath: string, name: string): ThinContainer | undefined {
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

/**
 * What stands on this thin container, for the refusal to destroy it: thin containers of its root stacked on it (by
 * their layers), and anything its registration's lxc_snapshots lists that is still registered (thin containers of
 * other roots, named with where they are registered).
 */
export function dependentNames(containerDir: string, state: ThinState): string[] {
  const here = dependentsOf(containerDir);
  const elsewhere = listedDependents(registrationDir(state.lxcpath, state.name))
    .filter((entry) => !here.some((other) => other.name === entry.name && other.lxcpath === entry.lxcpath))
    .filter((entry) => existsSync(join(entry.lxcpath, entry.name, 'config')))
    .map((entry) => `${entry.name} (${join(entry.lxcpath, entry.name)})`);
  return [...here.map((other) => other.name), ...elsewhere];
}

/** Thin containers stacked on this one (it is their base). */
export function dependentsOf(containerDir: string): ThinState[] {
  const wlayer = join(containerDir, 'wlayer');
  return listContainers(dirname(containerDir))
    .map((container) => container.state)
    .filter((state) => state.layers.includes(wlayer));
}
