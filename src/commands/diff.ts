// thin-lxc diff: the files a thin container added, changed or deleted compared with its base.
import { findContainer } from '../container/containers.js';
import { layerChanges, type Change } from '../container/layers.js';
import { opaqueDirectories } from '../core/commands.js';
import { parseMount } from '../core/validate.js';
import type { Settings } from './settings.js';

export function diff(idOrName: string, settings: Settings): Change[] {
  const { state, paths } = findContainer(settings.root, idOrName, settings.lxcpath);
  const mountPoints = new Set(state.mounts.map((spec) => parseMount(spec, '/').container.slice(1)));
  return layerChanges({ wlayer: paths.wlayer, layers: state.layers, opaque: opaqueDirectories(paths.wlayer), mountPoints });
}
