// thin-lxc diff: the files a thin container added, changed or deleted compared with its base.
import { findContainer } from '../container/containers.js';
import { layerChanges, type Change } from '../container/layers.js';
import { opaqueDirectories } from '../core/commands.js';
import { parseMount } from '../core/validate.js';
import { readImage } from '../union/disk.js';
import type { Settings } from './settings.js';

export async function diff(idOrName: string, settings: Settings): Promise<Change[]> {
  const { state, paths } = findContainer(settings.root, idOrName, settings.lxcpath);
  const mountPoints = new Set(state.mounts.map((spec) => parseMount(spec, '/').container.slice(1)));
  const changes = (wlayer: string) => layerChanges({ wlayer, layers: state.layers, opaque: opaqueDirectories(wlayer), mountPoints });
  if (state.diskMode !== 'image') return changes(paths.wlayer);
  // Read where a process of ours holds the image mounted read-only, in a namespace of its own.
  const image = await readImage(paths.diskImage, paths.disk);
  try {
    return changes(image.upper);
  } finally {
    await image.release();
  }
}
