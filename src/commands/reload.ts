// thin-lxc reload (the original's `-a reload`): re-applies the forwarding of running thin containers (frozen,
// starting and stopping ones too), e.g. after a firewall reload flushed it, and removes what stopped ones left.
// Safe to repeat.
import { knownContainers } from '../container/containers.js';
import { readState, type ThinState } from '../state/state.js';
import type { LxcState } from '../core/commands.js';
import { withContainerLock } from '../core/lock.js';
import { forwardTarget, guardLocalnet, installForwarding, installedTags, recordedGeneration, removeForwarding } from '../forward/apply.js';
import { containerTag } from '../forward/rules.js';
import { defaultBridge } from '../lxc/config.js';
import { lxcStatusLookup, monitorSocket } from '../lxc/lxcpath.js';
import type { Settings } from './settings.js';

/**
 * What reload does for one container: re-apply its forwarding while its init is alive (any state but STOPPED:
 * frozen, starting and stopping too, whose own post-stop removes it) and it has ports to forward; otherwise
 * remove what iptables has of it, whatever its state publishes now.
 */
export function reloadAction(lxc: LxcState | undefined, forwards: boolean, installed: boolean): 'apply' | 'remove' | 'none' {
  if (alive(lxc) && forwards) return 'apply';
  return installed ? 'remove' : 'none';
}

function alive(lxc: LxcState | undefined): boolean {
  return lxc !== undefined && lxc !== 'STOPPED';
}

/**
 * Containers in the root and those registered in the lxcpath from other roots, each asked of its own lxcpath.
 * What is removed is what iptables has of a container, whatever its state publishes now. Each container that
 * has something to change is changed under its lock, its state read under it; LXC is asked before (it answers
 * only once a start's hooks are done, and they wait for that lock): one that started, stopped or restarted since
 * (its monitor's socket, one per start, read before LXC was asked, is another now) is left to its own hooks.
 */
export function reload(settings: Settings): string {
  const statusOf = lxcStatusLookup();
  const known = knownContainers(settings.root, settings.lxcpath);
  // Before LXC is asked: a start after this read shows in the comparison under the lock, whatever LXC said.
  const monitors = new Map(known.map(({ state, paths }) => [paths.dir, monitorSocket(state.lxcpath, state.name)]));
  const tags = installedTags(known.some(({ state }) => state.ip6 !== null));
  const installed = new Set([...tags[4], ...tags[6]]);
  const applied: string[] = [];
  const removed: string[] = [];
  for (const { state: listed, paths } of known) {
    if (!listed.veth) continue;
    const tag = containerTag(listed.veth);
    const status = statusOf(listed.lxcpath, listed.name);
    const runs = alive(status?.state);
    if (!runs && !installed.has(tag)) continue;
    const done = withContainerLock(paths.dir, `reload ${listed.name}`, () => {
      const monitor = monitorSocket(listed.lxcpath, listed.name);
      if (monitor !== monitors.get(paths.dir) || (monitor !== null) !== runs) return null;
      let state: ThinState;
      try {
        state = readState(paths.dir);
      } catch {
        return null; // destroyed meanwhile
      }
      const target = forwardTarget(state);
      const action = reloadAction(status?.state, target !== null && state.bridge !== null, installed.has(tag));
      if (action === 'apply' && target && state.bridge) {
        // Still the running start's forwarding: its post-stop must remove it. With no record, the start is
        // recorded as unknown (''), which its post-stop removes: no generation is made up from LXC's answer.
        const generation = recordedGeneration(tag) ?? recordedGeneration(tag, 6) ?? '';
        installForwarding(target, state.bridge, state.veth, generation, { reconcile: true });
        return 'applied';
      }
      if (action !== 'remove') return null;
      removeForwarding(tag, { reconcile: true, installed: ([4, 6] as const).filter((family) => tags[family].includes(tag)) });
      return 'removed';
    });
    if (done === 'applied') applied.push(listed.name);
    if (done === 'removed') removed.push(listed.name);
  }
  // After the containers' own: a bridge left with route_localnet on and no running IPv4 forward gets its guard too.
  const guarded = guardLocalnet([defaultBridge(), ...known.flatMap(({ state }) => (state.bridge ? [state.bridge] : []))]);
  return [
    `Forwarding re-applied for ${applied.length} running thin container(s)${applied.length ? `: ${applied.join(', ')}` : ''}.`,
    ...(removed.length ? [`Stale rules removed for: ${removed.join(', ')}.`] : []),
    ...guarded.map((change) => `${change[0]!.toUpperCase()}${change.slice(1)}.`),
    'Union mounts need nothing: each start mounts its own.',
  ].join('\n');
}
