#!/usr/bin/env node
// Mounts a thin container's union rootfs inside the container's own mount namespace, at every start:
//   lxc.hook.pre-mount = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-mount.js /containers/ID
// A copy made with lxc-copy or lxc-snapshot carries this line too; for it the start is refused, saying why.
import { ownContainer, runHook } from '../src/lxc/hooks.js';
import { mountUnion } from '../src/union/mount.js';

runHook('pre-mount', import.meta.url, (run) => {
  const { state, paths } = ownContainer(run);
  mountUnion({ fs: state.fs, layers: state.layers, upper: paths.wlayer, work: paths.work, target: paths.rootfs });
});
