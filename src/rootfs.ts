// Turns a base's `lxc.rootfs.path` into the read-only layers a thin container stacks on.
import { UserError } from './errors.js';
import { quote } from './validate.js';

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
