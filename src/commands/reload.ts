// thin-lxc reload (the original's `-a reload`): re-applies the forwarding of running thin containers, e.g.
// after a firewall reload flushed it, and removes what stopped ones left. Safe to repeat.
import { knownContainers } from '../container/containers.js';
import { forwardTarget, installForwarding, installedTags, removeForwarding } from '../forward/apply.js';
import { recordedGeneration } from '../forward/apply.js';
import { lxcStatusLookup } from '../lxc/lxcpath.js';
import type { Settings } from './settings.js';

/** Containers in the root and those registered in the lxcpath from other roots, each asked of its own lxcpath. */
export function reload(settings: Settings): string {
  const statusOf = lxcStatusLookup();
  const known = knownContainers(settings.root, settings.lxcpath);
  const tags = installedTags(known.some(({ state }) => state.ip6 !== null));
  const installed = new Set([...tags[4], ...tags[6]]);
  const applied: string[] = [];
  const removed: string[] = [];
  for (const { state } of known) {
    const target = forwardTarget(state);
    if (!target) continue;
    const status = statusOf(state.lxcpath, state.name);
    if (status?.state === 'RUNNING' && state.bridge) {
      // Still the running start's forwarding: its post-stop must remove it.
      const generation = recordedGeneration(target.tag) || (status.pid ?? '');
      installForwarding(target, state.bridge, state.veth, generation, { reconcile: true });
      applied.push(state.name);
    } else if (installed.has(target.tag)) {
      removeForwarding(target.tag, { reconcile: true, ipv6Installed: tags[6].includes(target.tag) });
      removed.push(state.name);
    }
  }
  return [
    `Forwarding re-applied for ${applied.length} running thin container(s)${applied.length ? `: ${applied.join(', ')}` : ''}.`,
    ...(removed.length ? [`Stale rules removed for stopped: ${removed.join(', ')}.`] : []),
    'Union mounts need nothing: each start mounts its own.',
  ].join('\n');
}
