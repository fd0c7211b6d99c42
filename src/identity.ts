// Gives a thin container its own hostname inside its files, as lxc-copy does for a copy: systemd and
// most inits set the hostname from /etc/hostname at boot, over what lxc.uts.name says.
import { lstatSync, readFileSync } from 'node:fs';
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
