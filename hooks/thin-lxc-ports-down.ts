#!/usr/bin/env node
// Removes a thin container's port forwarding when it stops (LXC runs it also after a failed start), unless a
// newer start of the container installed it: LXC reports STOPPED before it runs this hook, so that can happen.
// What it removes is what the record says was installed, whatever the state publishes now; when nothing is recorded
// (a start by thin-lxc 0.2, which kept no record, or a record lost), what the live ruleset has for it.
// An unprivileged container's union, mounted in its monitor's namespace, is unmounted here first (see union/mount.ts).
//   lxc.hook.post-stop = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-ports-down.js /containers/ID
import { familiesToLook, removeForwarding } from '../src/forward/apply.js';
import { containerTag } from '../src/forward/rules.js';
import { runHook, unlockedDuringCommit } from '../src/lifecycle/hooks.js';
import { releaseMonitorMounts } from '../src/union/mount.js';

runHook('post-stop', import.meta.url, ({ context, container, own }) => {
  if (container && own && container.state.idmap !== null) releaseMonitorMounts(container.paths.dir);
  if (!container || !own) return `not thin container ${container?.state.name ?? context.containerDir}'s own stop: its forwarding is left alone`;
  const { veth, name } = container.state;
  if (!veth) return;
  const tag = containerTag(veth);
  // This version's start records the forwarding before installing it, so nothing recorded is nothing installed by it
  // (a failed start); one by 0.2 recorded nothing, and a container that publishes has its live ruleset read for it.
  if (removeForwarding(tag, { generation: context.generation, unrecorded: familiesToLook(container.state) }) !== 'removed') {
    return `forwarding of ${name} belongs to a newer start (not LXC_PID ${context.generation}): left in place`;
  }
}, { lock: true, unlocked: unlockedDuringCommit });
