#!/usr/bin/env node
// Destroys an ephemeral thin container once it stops, however it stopped (lxc-stop, poweroff inside, its
// init killed): its registration, address reservation, lease and directory. LXC runs it after ports-down.
//   lxc.hook.post-stop = /usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-ephemeral.js /containers/ID
// A stop that runs no hook (the host lost power, lxc-start was killed) is finished by the next thin-lxc command.
// A reboot from inside keeps it, as LXC's own ephemeral containers are kept: LXC starts it again after this hook.
import { existsSync } from 'node:fs';
import { dependentsOf } from '../src/container/containers.js';
import { teardown } from '../src/lifecycle/teardown.js';
import { withLock } from '../src/core/lock.js';
import { runHook, skipDuringCommit } from '../src/lifecycle/hooks.js';
import { monitorSocket } from '../src/lxc/lxcpath.js';
import { releaseMonitorMounts } from '../src/union/mount.js';

runHook('post-stop', import.meta.url, ({ context, container, own }) => {
  if (!container) return;
  if (!own) return `${context.name} is a copy of thin container ${container.state.name}: nothing of ${container.state.name} removed`;
  if (!container.state.ephemeral) return `${container.state.name} is no longer ephemeral: kept`;
  if (context.rebooting) return `${container.state.name} is rebooting: kept`;
  // Only a start of the container now in the directory marks it, and a teardown removes the mark: none means a new
  // container was made there while this stop's hooks ran (create --replace, or destroy and create, after LXC had
  // reported STOPPED), which is not the one that stopped; or its start failed before its mount hook, and it never ran.
  if (!existsSync(container.paths.started)) return `${container.state.name} has no mark of a start (${container.paths.started}): not the container that stopped, or it never ran: kept`;
  // Only an older thin-lxc let an ephemeral container become a base: the sweep of a later command removes it once that ends.
  const dependents = dependentsOf(context.containerDir).map((state) => state.name);
  if (dependents.length > 0) return `${container.state.name} is the base of thin containers ${dependents.join(', ')}: kept until they are destroyed`;
  // LXC closes this boot's command socket before its post-stop hooks: one there now is a newer start's monitor
  // (a supervisor's restart right after a poweroff), whose container this must not remove.
  if (monitorSocket(container.state.lxcpath, context.name) !== null) return `${container.state.name} was started again: kept`;
  // Its union in its monitor's namespace, if ports-down did not unmount it: teardown refuses a directory with mounts.
  if (container.state.idmap !== null) releaseMonitorMounts(container.paths.dir);
  // LXC runs post-stop hooks in order and stops at the first that fails: ports-down has removed its forwarding.
  withLock('create', () => teardown(context.containerDir, { expectedName: context.name, unregister: true, afterPortsDown: true }));
}, { lock: true, skip: skipDuringCommit });
