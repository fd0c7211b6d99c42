#!/usr/bin/env node
// Refuses copies of a thin container by LXC's own tools (lxc-copy, lxc-copy -s, lxc-snapshot): they copy the
// config and an empty mount point, not the container's files, and the copy would run the original's hooks.
// LXC then removes the half-made copy, running its destroy hook, which leaves the original alone:
//   lxc.hook.clone = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-clone.js /containers/ID
import { UserError } from '../src/core/errors.js';
import { copyRefusal, runHook } from '../src/lifecycle/hooks.js';

runHook('clone', import.meta.url, ({ context, container }) => {
  throw new UserError(copyRefusal(context.name, container?.state.name ?? context.containerDir));
});
