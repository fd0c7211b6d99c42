#!/usr/bin/env node
// Mounts a thin container's union rootfs inside the container's own mount namespace, at every start:
//   lxc.hook.pre-mount = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-mount.js /containers/ID
import { containerPaths, readState } from '../src/container.js';
import { runHook } from '../src/hook-runner.js';
import { mountUnion } from '../src/union.js';
import { dirname, basename } from 'node:path';

runHook('pre-mount', import.meta.url, ({ containerDir }) => {
  const state = readState(containerDir);
  const paths = containerPaths(dirname(containerDir), basename(containerDir));
  mountUnion({ fs: state.fs, layers: state.layers, upper: paths.wlayer, work: paths.work, target: paths.rootfs });
});
