#!/usr/bin/env node
// Installs a thin container's port forwarding when it starts (host side, before its init runs), recorded as
// this start's (LXC_PID) so that only this start's post-stop removes it; and keeps an IPv6 address chosen
// with --ip6 (its SLAAC token):
//   lxc.hook.start-host = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-ports-up.js /containers/ID
import { forwardTarget, installForwarding } from '../src/forward/apply.js';
import { ownContainer, runHook } from '../src/lifecycle/hooks.js';
import { keepChosenIPv6 } from '../src/network/addresses.js';

runHook('start-host', import.meta.url, (run) => {
  const { state } = ownContainer(run);
  keepChosenIPv6(state, run.context.generation);
  const target = forwardTarget(state);
  if (target && state.bridge) installForwarding(target, state.bridge, state.veth, run.context.generation);
}, { lock: true });
