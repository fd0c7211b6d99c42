#!/usr/bin/env node
// Removes a thin container (leftover rules, address reservation, directory) when LXC destroys it; LXC removes its registration:
//   lxc.hook.destroy = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-destroy.js /containers/ID
import { teardown } from '../src/teardown.js';
import { runHook } from '../src/hook-runner.js';

runHook('destroy', import.meta.url, ({ containerDir, name }) => teardown(containerDir, { expectedName: name, unregister: false }));
