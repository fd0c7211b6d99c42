// thin-lxc reload (the original's `-a reload`): re-applies the forwarding rules of running thin containers,
// e.g. after a firewall flush, and removes rules left by stopped ones. Safe to repeat.
import { listContainers } from '../container.js';
import { forwardTarget, installForwarding, installedTags, removeForwarding } from '../firewall.js';
import { lxcStates } from '../lxc.js';
import type { Settings } from '../settings.js';

export function reload(settings: Settings): string {
  const containers = listContainers(settings.root);
  const states = lxcStates(settings.lxcpath);
  const installed = new Set(installedTags());
  const applied: string[] = [];
  const removed: string[] = [];
  for (const { state } of containers) {
    const target = forwardTarget(state);
    if (!target) continue;
    if (states.get(state.name) === 'RUNNING' && state.bridge) {
      installForwarding(target, state.bridge, state.veth, { reconcile: true });
      applied.push(state.name);
    } else if (installed.has(target.tag)) {
      removeForwarding(target.tag, { reconcile: true });
      removed.push(state.name);
    }
  }
  return [
    `Forwarding re-applied for ${applied.length} running thin container(s)${applied.length ? `: ${applied.join(', ')}` : ''}.`,
    ...(removed.length ? [`Stale rules removed for stopped: ${removed.join(', ')}.`] : []),
    'Union mounts need nothing: each start mounts its own.',
  ].join('\n');
}
