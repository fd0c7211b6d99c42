#!/usr/bin/env node
// Mounts a thin container's union rootfs inside the container's own mount namespace, at every start:
//   lxc.hook.pre-mount = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-mount.js /containers/ID
// A copy made with lxc-copy or lxc-snapshot carries this line too; for it the start is refused, saying why.
// So is a start while thin-lxc commit copies the container.
// A --tmpfs container's write layer is a tmpfs mounted here too, so it is empty at every start and goes with the namespace.
// A --disk container kept in an image has it mounted here (-o loop): the loop device goes with the namespace too.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ownContainer, refuseDuringCommit, runHook } from '../src/lxc/hooks.js';
import { mountImage } from '../src/union/disk.js';
import { memoryLayer, mountUnion } from '../src/union/mount.js';

runHook('pre-mount', import.meta.url, (run) => {
  const { state, paths } = ownContainer(run);
  // An ephemeral container that is not running but has this was not stopped cleanly: the next thin-lxc command removes it.
  if (state.ephemeral) {
    mkdirSync(dirname(paths.started), { recursive: true, mode: 0o755 });
    writeFileSync(paths.started, `${run.context.generation}\n`);
  }
  const target = paths.rootfs;
  if (state.diskMode === 'image') {
    const disk = mountImage(paths.diskImage, paths.disk);
    mountUnion({ fs: state.fs, layers: state.layers, upper: disk.upper, work: disk.work, target });
  } else if (state.tmpfs === null) {
    mountUnion({ fs: state.fs, layers: state.layers, upper: paths.wlayer, work: paths.work, target });
  } else {
    // The write layer on disk holds the container's identity (hostname, hosts): read-only under the tmpfs.
    const memory = memoryLayer(paths.memory, state.tmpfs);
    mountUnion({ fs: state.fs, layers: [paths.wlayer, ...state.layers], upper: memory.upper, work: memory.work, target });
  }
}, { lock: true, refuse: refuseDuringCommit });
