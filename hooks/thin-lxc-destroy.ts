#!/usr/bin/env node
// Removes a thin container (leftover rules, address reservation and lease, directory) when LXC destroys it;
// LXC removes its registration. Destroying a copy made with LXC's tools removes nothing of the original.
// It holds the container's lock, taken after LXC's own lock on it (held by lxc-destroy): no thin-lxc command or
// hook holding a container's lock takes LXC's lock on that container.
//   lxc.hook.destroy = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-destroy.js /containers/ID
import { teardown } from '../src/lifecycle/teardown.js';
import { runHook } from '../src/lifecycle/hooks.js';

runHook('destroy', import.meta.url, ({ context, container, own }) => {
  if (!container) return;
  if (!own) return `${context.name} is a copy of thin container ${container.state.name}: nothing of ${container.state.name} removed`;
  teardown(context.containerDir, { expectedName: context.name, unregister: false });
}, { lock: true });
