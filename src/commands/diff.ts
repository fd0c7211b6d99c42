// thin-lxc diff: the files a thin container added, changed or deleted compared with its base.
import { findContainer } from '../container.js';
import { layerChanges, opaqueDirectories, type Change } from '../diff.js';
import type { Settings } from '../settings.js';
import { parseMount } from '../validate.js';

export function diff(idOrName: string, settings: Settings): Change[] {
  const { state, paths } = findContainer(settings.root, idOrName, settings.lxcpath);
  const mountPoints = new Set(state.mounts.map((spec) => parseMount(spec, '/').container.slice(1)));
  return layerChanges({ wlayer: paths.wlayer, layers: state.layers, opaque: opaqueDirectories(paths.wlayer), mountPoints });
}
