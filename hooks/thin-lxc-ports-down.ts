#!/usr/bin/env node
// Removes a thin container's port forwarding when it stops; LXC runs it also after a failed start:
//   lxc.hook.post-stop = /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-ports-down.js /containers/ID
import { containerTag } from '../src/forward.js';
import { removeForwarding } from '../src/firewall.js';
import { runHook } from '../src/hook-runner.js';

runHook('post-stop', import.meta.url, ({ containerDir }) => removeForwarding(containerTag(containerDir)));
