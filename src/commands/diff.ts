// thin-lxc diff: the files a thin container added, changed or deleted compared with its base.
import { findContainer } from '../container/containers.js';
import { layerChanges, type Change } from '../container/layers.js';
import { opaqueDirectories } from '../core/commands.js';
import { withContainerLock } from '../core/lock.js';
import { parseMount } from '../core/validate.js';
import { readImage } from '../union/disk-image.js';
import type { Settings } from './settings.js';

export async function diff(idOrName: string, settings: Settings): Promise<Change[]> {
  const { state, paths } = findContainer(settings.root, idOrName, settings.lxcpath);
  const mountPoints = new Set(state.mounts.map((spec) => parseMount(spec, '/').container.slice(1)));
  const changes = (wlayer: string) => layerChanges({ wlayer, layers: state.layers, opaque: opaqueDirectories(wlayer), mountPoints });
  if (state.diskMode !== 'image') return changes(paths.wlayer);
  // Read where a process of ours holds the image mounted read-only, in a namespace of its own, holding the
  // container's lock: a start's mount hook waits for a read of the stopped image, whose read-only loop device it
  // would otherwise reuse (and fail on). A running container's own filesystem is held instead (one ext4, its loop
  // device stays attached while held, which update and commit refuse): the lock goes once it is held, so the
  // walk of a large layer never keeps its post-stop hooks (which take the lock) waiting.
  type Read = { changes: Change[] } | { image: Awaited<ReturnType<typeof readImage>> };
  const read = await withContainerLock(paths.dir, `diff ${state.name}`, async (lockFd): Promise<Read> => {
    const image = await readImage(paths.diskImage, paths.disk, state.name, lockFd);
    if (image.live) return { image };
    try {
      return { changes: changes(image.upper) };
    } finally {
      await image.release();
    }
  });
  if ('changes' in read) return read.changes;
  try {
    return changes(read.image.upper);
  } finally {
    await read.image.release();
  }
}
