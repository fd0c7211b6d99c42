// thin-lxc refresh: points existing thin containers' hook lines at this installation (node and thin-lxc),
// after node moved or was upgraded, or thin-lxc was reinstalled elsewhere or upgraded, their limits at the
// host's cgroup version, and their IPv6 addresses into their bridge's network after its prefix changed. Safe to repeat.
import { existsSync, readFileSync } from 'node:fs';
import { closeDirectory, isClosed } from '../container/access.js';
import { knownContainers } from '../container/containers.js';
import { type ThinContainer } from '../state/paths.js';
import { readState, serializeState, type ThinState } from '../state/state.js';
import { UserError } from '../core/errors.js';
import { writeFileAtomic } from '../core/files.js';
import { withContainerLock } from '../core/lock.js';
import { quote } from '../core/validate.js';
import { replaceEntries, type ConfigEntry } from '../lxc/config.js';
import { checkInstallation, thinHooks } from '../lxc/install.js';
import { hookNeeds } from '../lifecycle/hook-needs.js';
import { hostCgroupVersion, isLimitOf, limitLines } from '../lxc/limits.js';
import { withHookLines } from '../lxc/render.js';
import { addDependent, isListed } from '../lxc/snapshots.js';
import { readdress6 } from '../network/addresses.js';
import { readBridge } from '../network/bridge.js';
import { reserve, signalDnsmasq } from '../network/dhcp.js';
import { formatSubnet6 } from '../network/ipv6.js';
import type { Settings } from './settings.js';
import { settleKilledUpdates } from './update.js';

export interface Refreshed {
  changed: string[];
  unchanged: string[];
  /** Containers given an IPv6 address in their bridge's network, which changed since they were made. */
  readdressed: { name: string; from: string; to: string }[];
  /** Containers whose directory an older thin-lxc left open to other local users (0755). */
  closed: string[];
}

/** The named thin containers, or all that thin-lxc knows of (the root's, and others registered in the lxcpath). */
export function refresh(names: readonly string[], settings: Settings, options: { dryRun?: boolean | undefined } = {}): Refreshed {
  checkInstallation();
  const known = knownContainers(settings.root, settings.lxcpath);
  const unknown = names.filter((name) => !known.some(({ state }) => state.name === name || state.id === name));
  if (unknown.length > 0) throw new UserError(`no thin container ${unknown.map(quote).join(', ')} in ${settings.root} or ${settings.lxcpath}: see thin-lxc list`);
  const chosen = names.length === 0 ? known : known.filter(({ state }) => names.includes(state.name) || names.includes(state.id));
  const result: Refreshed = { changed: [], unchanged: [], readdressed: [], closed: [] };
  // The addresses given so far in this run, so that two containers moved at once never get the same one.
  const given = new Map<string, ThinContainer>(known.map((container) => [container.paths.dir, container]));
  for (const { state: listed, paths } of chosen) {
    // Read and rewritten under the container's lock, so that an update or a hook in between loses nothing.
    const changed = withContainerLock(paths.dir, `refresh ${listed.name}`, () => {
      // A state an update killed in its renames left staged is newer than the file: settled before it is read.
      if (!options.dryRun) settleKilledUpdates(paths);
      const before = readState(paths.dir);
      const moved = movedIPv6(before, [...given.values()].filter((other) => other.paths.dir !== paths.dir));
      const state = moved ? moved.state : before;
      const config = readFileSync(paths.config, 'utf8');
      const addressed = moved ? replaceEntries(config, (entry) => /^lxc\.net\.0\.ipv6\.(address|gateway)$/.test(entry.key), moved.lines, 'IPv6 (thin-lxc refresh).') : config;
      const hooks = withHookLines(addressed, thinHooks(paths.dir, hookNeeds(state)));
      // A host moved from cgroup v1 to v2 (or back) since the container was made: its limits in the host's keys.
      const updated = replaceEntries(hooks, isLimitOf(state), limitLines(state, hostCgroupVersion()), 'Resource limits, for this host\'s cgroup version (thin-lxc refresh).');
      // A container made before thin-lxc listed its containers in their base's lxc_snapshots is listed now.
      const dependent = { lxcpath: state.lxcpath, name: state.name };
      const unlisted = existsSync(state.base) && !isListed(state.base, dependent);
      if (unlisted && !options.dryRun) addDependent(state.base, dependent);
      if (moved) {
        result.readdressed.push({ name: state.name, from: before.ip6!, to: state.ip6! });
        given.set(paths.dir, { state, paths });
      }
      // A directory an older thin-lxc left open to every local user (0755) is closed now.
      if (!isClosed(paths.dir, state.idmap)) {
        if (!options.dryRun) closeDirectory(paths.dir, state.idmap);
        result.closed.push(state.name);
      }
      if (updated === config) return unlisted;
      if (!options.dryRun) {
        // The config first: a refresh interrupted before the state is written finds the same address again.
        writeFileAtomic(paths.config, updated, 0o644);
        if (moved) {
          writeFileAtomic(paths.state, serializeState(state), 0o644);
          if (state.ip && state.hwaddrs['0']) reserve(state.name, state.hwaddrs['0'], state.ip, state.ip6);
        }
      }
      return true;
    });
    (changed ? result.changed : result.unchanged).push(listed.name);
  }
  // dnsmasq drops the old names' AAAA records only when told to read its files again.
  if (result.readdressed.length > 0 && !options.dryRun) signalDnsmasq();
  return result;
}

/**
 * A container whose IPv6 address is outside its bridge's network now (setup --ipv6 changed the prefix): its new
 * state and config lines. null when it has no IPv6 address, is inside, or its bridge cannot be read (nothing to do).
 */
function movedIPv6(state: ThinState, others: readonly ThinContainer[]): { state: ThinState; lines: ConfigEntry[] } | null {
  if (state.ip6 === null || state.bridge === null) return null;
  let bridge;
  try {
    bridge = readBridge(state.bridge);
  } catch {
    return null;
  }
  const ip6 = readdress6(state, bridge, others);
  if (ip6 === null || !bridge.ipv6) return null;
  return {
    state: { ...state, ip6, subnet6: formatSubnet6(bridge.ipv6.subnet) },
    lines: [
      { key: 'lxc.net.0.ipv6.address', value: `${ip6}/${bridge.ipv6.subnet.prefix}` },
      { key: 'lxc.net.0.ipv6.gateway', value: bridge.ipv6.gateway },
    ],
  };
}

export function formatRefreshed({ changed, unchanged, readdressed, closed }: Refreshed, dryRun: boolean): string {
  const list = (names: readonly string[]) => (names.length ? `: ${names.join(', ')}` : '');
  const moves = readdressed.map(({ name, from, to }) => `${name} (${from} -> ${to})`);
  return [
    `${dryRun ? 'Would point' : 'Pointed'} the hooks of ${changed.length} thin container(s) at this installation${list(changed)}.`,
    ...(moves.length ? [`${dryRun ? 'Would re-address' : 'Re-addressed'} into their bridge's new IPv6 network: ${moves.join(', ')}.`] : []),
    ...(unchanged.length ? [`Already current: ${unchanged.join(', ')}.`] : []),
    ...(closed.length ? [`${dryRun ? 'Would close' : 'Closed'} to other local users (older versions left them open): ${closed.join(', ')}.`] : []),
    // A chmod takes back no working directory or open descriptor a process got while it was open.
    ...(closed.length && !dryRun ? ["A process that was inside one before keeps its way in until it ends: lsof +D on the container's directory finds it (or reboot)."] : []),
    ...(changed.length && !dryRun ? ['Running ones use the new hooks from their next start.'] : []),
  ].join('\n');
}
