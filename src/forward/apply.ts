// Installs and removes a thin container's port forwarding on the host, on IPv4 and IPv6, under one lock, all
// or nothing, and keeps thin-lxc's record of whose forwarding is installed and by which start.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ThinState } from '../state/state.js';
import { iptablesRestore, iptablesSave, tryIptablesRestore } from '../core/commands.js';
import { LOCK_DIR, withLock } from '../core/lock.js';
import { type Family, parsePublish } from '../core/validate.js';
import { bridgeIPv6 } from '../network/bridge.js';
import {
  containerRules,
  type ContainerRules,
  containerTag,
  type ForwardTarget,
  guardInPlace,
  guardScript,
  quickInstallScript,
  quickRemoveScript,
  readSaved,
  restoreScript,
  type SavedState,
  targetFamilies,
} from './rules.js';

export function forwardTarget(state: ThinState): ForwardTarget | null {
  if (state.publish.length === 0 || !state.ip || !state.subnet || !state.veth) return null;
  const ipv6 = state.ip6 && state.subnet6 ? { address: state.ip6, subnet: state.subnet6 } : null;
  return { tag: containerTag(state.veth), name: state.name, address: state.ip, subnet: state.subnet, ipv6, publish: state.publish.map(parsePublish) };
}

/**
 * The families to forward on now: IPv6 only while the bridge has its IPv6 network (a host that turned IPv6
 * off since the container was made forwards IPv4 as before, and runs no ip6tables).
 */
function familiesNow(target: ForwardTarget, bridge: string): Family[] {
  return targetFamilies(target).filter((family) => family === 4 || bridgeIPv6(bridge) !== null);
}

export interface ForwardingOptions {
  /** Read what iptables has and repair it (reload), instead of trying the quick way first. */
  reconcile?: boolean;
  /**
   * Where to look when nothing at all is recorded for the tag (familiesToLook of the state that installed it): the
   * live ruleset there decides what goes.
   */
  unrecorded?: readonly Family[];
}

/**
 * Replaces the container's rules (a start after a crash leaves exactly one set) on each family and records
 * `generation`, the start they belong to; if anything fails, leaves none.
 */
export function installForwarding(target: ForwardTarget, bridge: string, veth: string | null, generation: string, options: ForwardingOptions = {}): void {
  const families = familiesNow(target, bridge);
  // Each iptables-restore is atomic, but a reconcile reads the ruleset, then restores what it found missing: without
  // the lock, a start in between loses its jumps (test/e2e/forward-lock.test.ts fails without it).
  withLock('iptables', () => {
    // Before this start records its own: a family it drops is looked at where nothing was recorded (see familiesToRemove).
    const recordedBefore = ([4, 6] as const).filter((family) => recordedGeneration(target.tag, family) !== null);
    try {
      for (const family of families) {
        const reconcile = options.reconcile === true || recordedGeneration(target.tag, family) !== null;
        // Recorded before its rules go in: removal follows the record, so the record never lacks what is installed
        // (a hook killed between the two leaves a record of rules that are not there, which removal tolerates).
        recordInstalled(family, target.tag, generation);
        applyInstall(family, { tag: target.tag, rules: containerRules(target, family) }, reconcile);
      }
      // A family it no longer publishes on (thin-lxc update took its last port there) loses its rules, also where
      // nothing recorded them (a container started by thin-lxc 0.2, or its record lost): no stop would look there.
      for (const family of familiesToRemove(recordedBefore, options)) if (!families.includes(family)) removeUnlocked(family, target.tag);
      setSysctl('/proc/sys/net/ipv4/ip_forward', '1');
      // 127.0.0.1:PORT needs route_localnet on the bridge, and only an IPv4 forward has it. Its restore script
      // just installed the localhost guard, or checked (-C) that it is there: never the sysctl without the guard.
      if (families.includes(4)) setSysctl(routeLocalnet(bridge), '1');
      // lxc-net sets it too when it gives the bridge IPv6; a bridge of the user's own may not have it.
      if (families.includes(6)) setSysctl('/proc/sys/net/ipv6/conf/all/forwarding', '1');
      if (veth) allowHairpin(veth);
    } catch (error) {
      for (const family of families) {
        try {
          removeUnlocked(family, target.tag);
        } catch {
          // iptables itself is failing: the original error says why, and post-stop will try again.
        }
      }
      disarmUnguarded(bridge);
      throw error;
    }
  });
}

function routeLocalnet(bridge: string): string {
  return `/proc/sys/net/ipv4/conf/${bridge}/route_localnet`;
}

/** Whether route_localnet is on for the bridge and the raw table lacks the localhost guard: the CVE-2020-8558 hole. */
export function unguardedLocalnet(bridge: string, saved: SavedState): boolean {
  return readIfPresent(routeLocalnet(bridge)).trim() === '1' && !guardInPlace(saved);
}

/**
 * A guard that cannot be installed (or was taken since, and cannot be put back) turns route_localnet off:
 * connections to 127.0.0.1:PORT stop being forwarded, which is safe, instead of host services on 127.0.0.1
 * becoming reachable from the bridge. Called under the iptables lock.
 */
function disarmUnguarded(bridge: string): void {
  try {
    if (unguardedLocalnet(bridge, readSaved(iptablesSave(4)))) setSysctl(routeLocalnet(bridge), '0');
  } catch {
    // iptables-save itself fails: nothing here can tell whether the guard is there, so the sysctl goes off.
    if (readIfPresent(routeLocalnet(bridge)).trim() === '1') setSysctl(routeLocalnet(bridge), '0');
  }
}

/**
 * For each bridge with route_localnet on: the localhost guard put back where a firewall reload took it, or,
 * when iptables refuses it, route_localnet turned off. Returns what it changed, for reload to say.
 */
export function guardLocalnet(bridges: readonly string[]): string[] {
  return withLock('iptables', () => {
    const changed: string[] = [];
    for (const bridge of new Set(bridges)) {
      const saved = readSaved(iptablesSave(4));
      if (!unguardedLocalnet(bridge, saved)) continue;
      if (tryIptablesRestore(guardScript(saved), 4) && guardInPlace(readSaved(iptablesSave(4)))) {
        changed.push(`localhost guard put back for ${bridge}`);
      } else {
        setSysctl(routeLocalnet(bridge), '0');
        changed.push(`route_localnet turned off on ${bridge} (iptables refused the localhost guard)`);
      }
    }
    return changed;
  });
}

function readIfPresent(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Removes the container's rules on each family; quiet when they are already gone. With `generation` (a
 * post-stop hook), only if they belong to that start: LXC reports a container stopped before it runs its
 * post-stop hooks, so the next start may already have installed its own, which a late post-stop must leave
 * alone. A family is touched only where its forwarding is recorded (installForwarding records it before the
 * rules go in), or where the caller saw it in the live ruleset (`installed`, reload), or, when nothing at all is
 * recorded for the tag, on `unrecorded` (see familiesToLook), read from the live ruleset: a container published
 * only on IPv6 runs no iptables, one whose record its post-stop already removed (the ephemeral hook's
 * teardown) none at all, and a host without IPv6 no ip6tables.
 */
export function removeForwarding(
  tag: string,
  options: ForwardingOptions & { generation?: string; installed?: readonly Family[] } = {},
): 'removed' | 'kept for a newer start' {
  // Nothing recorded, seen or to look at (most stops of a container without ports): nothing is installed, and no
  // lock (a flock process) is taken to find that out.
  if (!isRecorded(tag) && !options.installed?.length && !options.unrecorded?.length) return 'removed';
  return withLock('iptables', () => {
    const installedBy = recordedGeneration(tag) ?? recordedGeneration(tag, 6);
    if (options.generation && installedBy && installedBy !== options.generation) return 'kept for a newer start';
    const recorded = ([4, 6] as const).filter((family) => recordedGeneration(tag, family) !== null);
    // An unrecorded family is not in the record, so removeUnlocked takes the long way there: iptables-save, the tag's
    // rules removed, and the record made to match the live ruleset (other unrecorded containers recorded again).
    for (const family of familiesToRemove(recorded, options)) removeUnlocked(family, tag, options.reconcile === true);
    return 'removed';
  });
}

/**
 * The families a removal touches: the recorded ones, the ones the caller saw installed, and, only when nothing at
 * all is recorded for the tag, the ones it asks to look at (a tag recorded on one family is this version's own
 * start, which recorded every family it installed).
 */
export function familiesToRemove(recorded: readonly Family[], options: { installed?: readonly Family[]; unrecorded?: readonly Family[] }): Family[] {
  const look = recorded.length === 0 ? (options.unrecorded ?? []) : [];
  return ([4, 6] as const).filter((family) => recorded.includes(family) || options.installed?.includes(family) === true || look.includes(family));
}

/**
 * Where a stop looks for a container's rules when nothing is recorded for it: thin-lxc 0.2 kept no record, so a
 * container it started and this version stops has only its live rules, as does one whose record was lost
 * (/run/thin-lxc removed). Nowhere when its state publishes nothing, so that such a stop runs no iptables; else
 * IPv4, and IPv6 where the state has an IPv6 address and its bridge has its IPv6 network now (`bridgeHasIPv6`; a
 * start forwards on IPv6 only then, see familiesNow, and a host or bridge without IPv6 runs no ip6tables). The
 * state only decides whether to look: what goes is what the live ruleset has.
 */
export function familiesToLook(state: Pick<ThinState, 'publish' | 'ip6' | 'bridge'>, bridgeHasIPv6?: boolean): Family[] {
  if (state.publish.length === 0) return [];
  if (!state.ip6 || !state.bridge) return [4];
  return (bridgeHasIPv6 ?? bridgeIPv6(state.bridge) !== null) ? [4, 6] : [4];
}

/** A kernel booted without IPv6 has no /proc/net/if_inet6, and its ip6tables cannot work. */
function ipv6Available(): boolean {
  return existsSync('/proc/net/if_inet6');
}

/**
 * The quick way unless `reconcile` (asked for, or this container's own forwarding was recorded before this start:
 * its last run did not stop cleanly, so its chains may be there): one self-checking script, no iptables-save.
 * Whatever it finds wrong, a reconcile.
 */
function applyInstall(family: Family, install: { tag: string; rules: ContainerRules }, reconcile: boolean): void {
  // The first one in (only its own record, written just before) makes the shared chains in its quick script too,
  // instead of a refused quick script, iptables-save and a reconcile: ports-up 163.1 -> 143.7 ms median, -12% pair by
  // pair (41 pairs, node -e 0 ~99 ms on a loaded host; see docs/performance.md).
  const first = recordedTags(family).every((tag) => tag === install.tag);
  if (!reconcile && tryIptablesRestore(quickInstallScript(install, family, { first }), family)) return;
  reconcileFromSave(family, { install });
}

/**
 * The quick way; the last one out removes the shared chains too, reading nothing first: measured against the
 * long way (iptables-save, then a reconcile) that it took before, ports-down 157.1 -> 143.6 ms median, -8% pair
 * by pair (41 pairs, node -e 0 ~99 ms on a loaded host; see docs/performance.md).
 */
function removeUnlocked(family: Family, tag: string, reconcile = false): void {
  const recorded = recordedTags(family);
  const last = recorded.length === 1;
  if (!reconcile && recorded.includes(tag) && tryIptablesRestore(quickRemoveScript(tag, { last, family }), family)) {
    recordRemoved(family, tag);
    return;
  }
  reconcileFromSave(family, { remove: tag });
}

/** The long way: what iptables really has, the script that changes only what is wrong, and the record made to match. */
function reconcileFromSave(family: Family, change: { install?: { tag: string; rules: ContainerRules }; remove?: string }): void {
  const saved = readSaved(iptablesSave(family));
  const script = restoreScript(saved, change, family);
  if (script) iptablesRestore(script, family);
  // What is being installed keeps the record its caller wrote before.
  const installed = change.install ? [change.install.tag] : [];
  recordExactly(family, [...saved.tags.filter((tag) => tag !== change.install?.tag && tag !== change.remove), ...installed]);
}

/**
 * The containers whose forwarding iptables has, on each family; ip6tables is asked only when `ipv6` (some
 * container has an IPv6 address) and the kernel has IPv6.
 */
export function installedTags(ipv6: boolean): Record<Family, string[]> {
  return { 4: readSaved(iptablesSave(4)).tags, 6: ipv6 && ipv6Available() ? readSaved(iptablesSave(6)).tags : [] };
}

/**
 * With br_netfilter loaded (Docker and Kubernetes load it), a container's connection to its own published
 * port through the host is DNATed back into the bridge port it came from, which a bridge refuses unless
 * that port is in hairpin mode. Without br_netfilter the host routes it and nothing is needed.
 */
function allowHairpin(veth: string): void {
  const bridgeNetfilter = '/proc/sys/net/bridge/bridge-nf-call-iptables';
  if (!existsSync(bridgeNetfilter) || readFileSync(bridgeNetfilter, 'utf8').trim() !== '1') return;
  setSysctl(`/sys/class/net/${veth}/brport/hairpin_mode`, '1');
}

function setSysctl(path: string, value: string): void {
  if (readFileSync(path, 'utf8').trim() !== value) writeFileSync(path, value);
}

/*
 * The record: one file per container tag and family in /run/thin-lxc/forwarding (IPv4) and forwarding6 (IPv6),
 * holding the start that installed it, on tmpfs like the rules themselves, so both are gone after a reboot.
 * Written only under the iptables lock, by a start before its rules go in, so that it never lacks what is
 * installed. It decides which families a stop touches, whether a start or stop may try the quick way, whose
 * scripts check the rules themselves (see quickInstallScript), and whether a stop belongs to the start that
 * installed them.
 */
const RECORD_DIRS: Record<Family, string> = { 4: join(LOCK_DIR, 'forwarding'), 6: join(LOCK_DIR, 'forwarding6') };

function recordedTags(family: Family): string[] {
  try {
    return readdirSync(RECORD_DIRS[family]);
  } catch {
    return [];
  }
}

/** Whether thin-lxc recorded forwarding of this tag as installed, on either family: what removal follows. */
export function isRecorded(tag: string): boolean {
  return recordedGeneration(tag) !== null || recordedGeneration(tag, 6) !== null;
}

/**
 * The start that installed the tag's forwarding: LXC_PID, its init's pid, which every hook of one run sees.
 * '' when unknown (installed before thin-lxc recorded it, or by a hook run without LXC); null when none is recorded.
 */
export function recordedGeneration(tag: string, family: Family = 4): string | null {
  try {
    return readFileSync(join(RECORD_DIRS[family], tag), 'utf8').trim();
  } catch {
    return null;
  }
}

function recordInstalled(family: Family, tag: string, generation: string): void {
  mkdirSync(RECORD_DIRS[family], { recursive: true, mode: 0o700 });
  writeFileSync(join(RECORD_DIRS[family], tag), generation === '' ? '' : `${generation}\n`);
}

function recordRemoved(family: Family, tag: string): void {
  rmSync(join(RECORD_DIRS[family], tag), { force: true });
}

/** After a reconcile from iptables-save: exactly these tags are recorded; the ones already there keep their start. */
function recordExactly(family: Family, tags: readonly string[]): void {
  const keep = new Set(tags);
  const recorded = new Set(recordedTags(family));
  for (const tag of recorded) if (!keep.has(tag)) recordRemoved(family, tag);
  for (const tag of tags) if (!recorded.has(tag)) recordInstalled(family, tag, '');
}
