// Which of a thin container's optional hooks its config carries, decided from its state.
import { type HookNeeds } from '../lxc/install.js';
import { tokenOf } from '../network/ipv6.js';
import type { ThinState } from '../state/state.js';

/** What decides a container's optional hooks. */
export function hookNeeds(state: Pick<ThinState, 'publish' | 'ephemeral' | 'ip6' | 'subnet6' | 'hwaddrs' | 'idmap'>): HookNeeds {
  return { startHost: state.publish.length > 0 || tokenOf(state) !== null, ephemeral: state.ephemeral, unprivileged: state.idmap !== null };
}
