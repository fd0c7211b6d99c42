#!/usr/bin/env node
// Mounts a thin container's union rootfs inside the container's own mount namespace, at every start:
//   lxc.hook.pre-mount = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-mount.js /containers/ID
// An unprivileged container runs it as lxc.hook.pre-start instead: host root, in its monitor's own mount namespace
// (lxc.monitor.unshare = 1), where it can idmap the base's layers; LXC copies the union into the container's namespace.
// A copy made with lxc-copy or lxc-snapshot carries this line too; for it the start is refused, saying why.
// So is a start while thin-lxc commit copies the container.
// A --tmpfs container's write layer is a tmpfs mounted here too, so it is empty at every start and goes with the namespace.
// A --disk container kept in an image has it mounted here (-o loop): the loop device goes with the namespace too.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../src/core/errors.js';
import { ownContainer, refuseDuringCommit, runHook } from '../src/lifecycle/hooks.js';
import { mountImage } from '../src/union/disk-image.js';
import { parseIdMap } from '../src/union/idmap.js';
import { clearMonitorNamespace, memoryLayer, mountMappedUnion, mountUnion, type UnionMount } from '../src/union/mount.js';

runHook(['pre-mount', 'pre-start'], import.meta.url, (run) => {
  const { state, paths } = ownContainer(run);
  // An ephemeral container that is not running but has this was not stopped cleanly: the next thin-lxc command removes it.
  // Its stop's ephemeral hook removes it only with this (a container made in its directory since has none), so it is
  // written first: a start that fails from here on is still destroyed at its stop.
  // Its content (LXC_PID) is only for a person reading it: this hook runs before the init exists, and sees none at a
  // first start, the previous boot's init after a reboot inside.
  if (state.ephemeral) {
    mkdirSync(dirname(paths.started), { recursive: true, mode: 0o755 });
    writeFileSync(paths.started, `${run.context.generation}\n`);
  }
  const map = state.idmap === null ? null : parseIdMap(state.idmap);
  if ((map !== null) !== (run.context.type === 'pre-start')) {
    const wanted = map ? 'lxc.hook.pre-start (it is unprivileged)' : 'lxc.hook.pre-mount (it is privileged)';
    throw new UserError(`${state.name}'s config runs the mount hook as lxc.hook.${run.context.type}, not ${wanted}: run thin-lxc refresh ${state.name}`);
  }
  if (map !== null) clearMonitorNamespace(paths.dir);
  const target = paths.rootfs;
  let union: UnionMount;
  if (state.diskMode === 'image') {
    const disk = mountImage(paths.diskImage, paths.disk, state.name);
    union = { fs: state.fs, layers: state.layers, upper: disk.upper, work: disk.work, target };
  } else if (state.tmpfs === null) {
    union = { fs: state.fs, layers: state.layers, upper: paths.wlayer, work: paths.work, target };
  } else {
    // The write layer on disk holds the container's identity (hostname, hosts): read-only under the tmpfs.
    // An unprivileged container's tmpfs is mounted in its monitor's namespace, with the rest of its union.
    const memory = memoryLayer(paths.memory, state.tmpfs, map?.host ?? 0);
    union = { fs: state.fs, layers: [paths.wlayer, ...state.layers], upper: memory.upper, work: memory.work, target };
  }
  if (map === null) mountUnion(union);
  // The write layer is stored in the container's map, like the layers of a base that has it.
  else mountMappedUnion(union, { map, shifted: [paths.wlayer, ...state.shifted], staging: paths.lowers });
}, { lock: true, refuse: refuseDuringCommit });
