// Installs and removes a thin container's port forwarding on the host, under one lock, all or nothing, and
// keeps thin-lxc's record of whose forwarding is installed and by which start.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ThinState } from '../container/state.js';
import { iptablesRestore, iptablesSave, tryIptablesRestore } from '../core/commands.js';
import { LOCK_DIR, withLock } from '../core/lock.js';
import { parsePublish } from '../core/validate.js';
import { containerRules, type ContainerRules, containerTag, type ForwardTarget, quickInstallScript, quickRemoveScript, readSaved, restoreScript } from './rules.js';

export function forwardTarget(state: ThinState): ForwardTarget | null {
  if (state.publish.length === 0 || !state.ip || !state.subnet || !state.veth) return null;
  return { tag: containerTag(state.veth), name: state.name, address: state.ip, subnet: state.subnet, publish: state.publish.map(parsePublish) };
}

export interface ForwardingOptions {
  /** Read what iptables has and repair it (reload), instead of trying the quick way first. */
  reconcile?: boolean;
}

/**
 * Replaces the container's rules (a start after a crash leaves exactly one set) and records `generation`,
 * the start they belong to; if anything fails, leaves none.
 */
export function installForwarding(target: ForwardTarget, bridge: string, veth: string | null, generation: string, options: ForwardingOptions = {}): void {
  withLock('iptables', () => {
    try {
      applyInstall({ tag: target.tag, rules: containerRules(target) }, options.reconcile === true);
      recordInstalled(target.tag, generation);
      // Forwarding needs ip_forward; 127.0.0.1:PORT needs route_localnet on the bridge, made safe by the guard rule just installed.
      setSysctl('/proc/sys/net/ipv4/ip_forward', '1');
      setSysctl(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, '1');
      if (veth) allowHairpin(veth);
    } catch (error) {
      try {
        removeUnlocked(target.tag);
      } catch {
        // iptables itself is failing: the original error says why, and post-stop will try again.
      }
      throw error;
    }
  });
}

/**
 * Removes the container's rules; quiet when they are already gone. With `generation` (a post-stop hook),
 * only if they belong to that start: LXC reports a container stopped before it runs its post-stop hooks,
 * so the next start may already have installed its own, which a late post-stop must leave alone.
 */
export function removeForwarding(tag: string, options: ForwardingOptions & { generation?: string } = {}): 'removed' | 'kept for a newer start' {
  return withLock('iptables', () => {
    const installedBy = recordedGeneration(tag);
    if (options.generation && installedBy && installedBy !== options.generation) return 'kept for a newer start';
    removeUnlocked(tag, options.reconcile === true);
    return 'removed';
  });
}

/**
 * The quick way unless this container's own forwarding is recorded (its last run did not stop cleanly, so its
 * chains may be there): one self-checking script, no iptables-save. Whatever it finds wrong, a reconcile.
 */
function applyInstall(install: { tag: string; rules: ContainerRules }, reconcile: boolean): void {
  if (!reconcile && recordedGeneration(install.tag) === null && tryIptablesRestore(quickInstallScript(install))) return;
  reconcileFromSave({ install });
}

/** The quick way while other containers' forwarding is recorded; the last one out removes the shared chains. */
function removeUnlocked(tag: string, reconcile = false): void {
  const recorded = recordedTags();
  if (!reconcile && recorded.includes(tag) && recorded.length > 1 && tryIptablesRestore(quickRemoveScript(tag))) {
    recordRemoved(tag);
    return;
  }
  reconcileFromSave({ remove: tag });
}

/** The long way: what iptables really has, the script that changes only what is wrong, and the record made to match. */
function reconcileFromSave(change: { install?: { tag: string; rules: ContainerRules }; remove?: string }): void {
  const saved = readSaved(iptablesSave());
  const script = restoreScript(saved, change);
  if (script) iptablesRestore(script);
  recordExactly(saved.tags.filter((tag) => tag !== change.install?.tag && tag !== change.remove));
}

export function installedTags(): string[] {
  return readSaved(iptablesSave()).tags;
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
 * The record: one file per container tag in /run/thin-lxc/forwarding, holding the start that installed it, on
 * tmpfs like the rules themselves, so both are gone after a reboot. Written only under the iptables lock. The
 * rules stay the truth: the record only decides whether a start or stop may try the quick way, whose scripts
 * check the rules themselves (see quickInstallScript), and whether a stop belongs to the start that installed them.
 */
const RECORD_DIR = join(LOCK_DIR, 'forwarding');

function recordedTags(): string[] {
  try {
    return readdirSync(RECORD_DIR);
  } catch {
    return [];
  }
}

/**
 * The start that installed the tag's forwarding: LXC_PID, its init's pid, which every hook of one run sees.
 * '' when unknown (installed before thin-lxc recorded it, or by a hook run without LXC); null when none is recorded.
 */
export function recordedGeneration(tag: string): string | null {
  try {
    return readFileSync(join(RECORD_DIR, tag), 'utf8').trim();
  } catch {
    return null;
  }
}

function recordInstalled(tag: string, generation: string): void {
  mkdirSync(RECORD_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(join(RECORD_DIR, tag), generation === '' ? '' : `${generation}\n`);
}

function recordRemoved(tag: string): void {
  rmSync(join(RECORD_DIR, tag), { force: true });
}

/** After a reconcile from iptables-save: exactly these tags are recorded; the ones already there keep their start. */
function recordExactly(tags: readonly string[]): void {
  const keep = new Set(tags);
  const recorded = new Set(recordedTags());
  for (const tag of recorded) if (!keep.has(tag)) recordRemoved(tag);
  for (const tag of tags) if (!recorded.has(tag)) recordInstalled(tag, '');
}
