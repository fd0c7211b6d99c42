#!/usr/bin/env node
// Removes a thin container's directory when LXC destroys it (lxc-destroy -n NAME); LXC removes its registration:
//   lxc.hook.destroy = /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-destroy.js /containers/ID
import { removeContainerDir } from '../src/container.js';
import { runHook } from '../src/hook-runner.js';

runHook('destroy', import.meta.url, ({ containerDir, name }) => removeContainerDir(containerDir, name));
