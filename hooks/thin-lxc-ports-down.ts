#!/usr/bin/env node
// Removes a thin container's port forwarding when it stops; LXC runs it also after a failed start:
//   lxc.hook.post-stop = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-ports-down.js /containers/ID
import { readState } from '../src/container.js';
import { removeForwarding } from '../src/firewall.js';
import { containerTag } from '../src/forward.js';
import { runHook } from '../src/hook-runner.js';

runHook('post-stop', import.meta.url, ({ containerDir }) => {
  const { publish, veth } = readState(containerDir);
  if (publish.length > 0 && veth) removeForwarding(containerTag(veth));
});
