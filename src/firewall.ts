// Installs and removes a thin container's port forwarding on the host, under one lock, all or nothing.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { containerRules, containerTag, guardLines, quickInstallScript, quickRemoveScript, readSaved, restoreScript, type ContainerRules, type ForwardTarget } from './forward.js';
import { recordExactly, recordInstalled, recordRemoved, recordedTags } from './forwarding-record.js';
import { iptablesRestore, iptablesSave, iptablesTable, tryIptablesRestore } from './iptables.js';
import { withLock } from './lock.js';
import type { ThinState } from './container.js';
import { parsePublish } from './validate.js';

export function forwardTarget(state: ThinState): ForwardTarget | null {
  if (state.publish.length === 0 || !state.ip || !state.subnet || !state.veth) return null;
  return { tag: containerTag(state.veth), name: state.name, address: state.ip, subnet: state.subnet, publish: state.publish.map(parsePublish) };
}

export interface ForwardingOptions {
  /** Read what iptables has and repair it (reload), instead of trusting thin-lxc's record of it. */
  reconcile?: boolean;
}

/** Replaces the container's rules (a start after a crash leaves exactly one set); if that fails, leaves none. */
export function installForwarding(target: ForwardTarget, bridge: string, veth: string | null, options: ForwardingOptions = {}): void {
  withLock('iptables', () => {
    try {
      applyInstall({ tag: target.tag, rules: containerRules(target) }, options.reconcile === true);
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

/** Removes the container's rules; quiet when they are already gone. */
export function removeForwarding(tag: string, options: ForwardingOptions = {}): void {
  withLock('iptables', () => removeUnlocked(tag, options.reconcile === true));
}

/** With other containers' forwarding recorded, one script and no iptables-save; otherwise (or if it is refused) a reconcile. */
function applyInstall(install: { tag: string; rules: ContainerRules }, reconcile: boolean): void {
  const recorded = recordedTags();
  if (!reconcile && recorded.some((tag) => tag !== install.tag)) {
    const guard = guardLines(readSaved(iptablesTable('raw')));
    if (tryIptablesRestore(quickInstallScript(install, recorded.includes(install.tag), guard))) {
      recordInstalled(install.tag);
      return;
    }
  }
  reconcileFromSave({ install });
}

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
  const others = saved.tags.filter((tag) => tag !== change.install?.tag && tag !== change.remove);
  recordExactly(change.install ? [...others, change.install.tag] : others);
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
