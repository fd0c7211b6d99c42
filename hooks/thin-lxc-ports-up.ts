#!/usr/bin/env node
// Installs a thin container's port forwarding when it starts (host side, before its init runs):
//   lxc.hook.start-host = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-ports-up.js /containers/ID
import { readState } from '../src/container.js';
import { forwardTarget, installForwarding } from '../src/firewall.js';
import { runHook } from '../src/hook-runner.js';

runHook('start-host', import.meta.url, ({ containerDir }) => {
  const state = readState(containerDir);
  const target = forwardTarget(state);
  if (target && state.bridge) installForwarding(target, state.bridge, state.veth);
});
