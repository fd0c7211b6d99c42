// The on-disk layout of one thin container: where its image, layers, state and run-time files are.
import { join } from 'node:path';
import { STATE_FILE, type ThinState } from './state.js';

export interface ContainerPaths {
  dir: string;
  image: string;
  config: string;
  rootfs: string;
  wlayer: string;
  work: string;
  state: string;
  hookLog: string;
  /** Where a --tmpfs container's write layer is mounted, inside its own mount namespace only. */
  memory: string;
  /** A --disk container's sparse ext4 image (upper and work inside), and where it is mounted inside its namespace. */
  diskImage: string;
  disk: string;
  /** Mount points of an unprivileged container's idmapped layers, in its monitor's mount namespace only. */
  lowers: string;
  /**
   * Written by an ephemeral container's start, one file per container in one folder of the root, so that
   * every command can look for crashed ones by reading one (usually absent) folder.
   */
  started: string;
}

/** The original's layout (`<root>/<id>/image/{config,rootfs}`, `<root>/<id>/wlayer`) plus overlayfs' workdir and our state. */
export function containerPaths(root: string, id: string): ContainerPaths {
  // One join; the rest are plain names under it (list builds these for every container).
  const dir = join(root, id);
  const image = `${dir}/image`;
  return {
    dir,
    image,
    config: `${image}/config`,
    rootfs: `${image}/rootfs`,
    wlayer: `${dir}/wlayer`,
    work: `${dir}/work`,
    state: `${dir}/${STATE_FILE}`,
    hookLog: `${dir}/hook.log`,
    memory: `${dir}/memory`,
    diskImage: `${dir}/disk.img`,
    disk: `${dir}/disk`,
    lowers: `${dir}/lowers`,
    started: `${root}/${STARTED_DIR}/${id}`,
  };
}

/** Ephemeral containers that started: one that is not running and has its file here stopped without its hook. */
export const STARTED_DIR = '.started';

export interface ThinContainer {
  state: ThinState;
  paths: ContainerPaths;
}
