// thin-lxc commit: a stopped thin container's files as it sees them, copied into a standalone LXC container
// with a config of its own and no thin-lxc hooks: a golden image to boot with lxc-start or to stack thin
// containers on.
import { mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { keptByThinContainer } from '../container/base.js';
import { findContainer, listContainers, type ThinContainer } from '../container/containers.js';
import { identityFiles } from '../container/layers.js';
import { copyMergedView, lxcState } from '../core/commands.js';
import { UserError } from '../core/errors.js';
import { writeFileAtomic } from '../core/files.js';
import { quote, validateName, parseMount } from '../core/validate.js';
import { type ConfigEntry, formatEntry, mountsBind, networkIndexes, parseLxcConfig } from '../lxc/config.js';
import { isLimitOf } from '../lxc/limits.js';
import { lxcContainerExists, registrationDir } from '../lxc/lxcpath.js';
import { assignMacs } from '../network/addresses.js';
import { readOnlyOptions } from '../union/mount.js';
import type { Settings } from './settings.js';

export interface CommitPlan {
  source: ThinContainer;
  name: string;
  dir: string;
  rootfs: string;
  /** The read-only layers copied, top first: the write layer over the base's. */
  layers: string[];
  config: string;
}

export function planCommit(target: string, newName: string, settings: Settings): CommitPlan {
  const source = findContainer(settings.root, target, settings.lxcpath);
  const { state, paths } = source;
  const name = validateName(newName, 'name');
  const lxc = lxcState(state.name, state.lxcpath);
  if (lxc !== 'STOPPED') throw new UserError(`${state.name} is ${lxc.toLowerCase()}: stop it first (lxc-stop -n ${state.name}), so that its files hold still while they are copied`);
  if (lxcContainerExists(settings.lxcpath, name) || listContainers(settings.root).some((other) => other.state.name === name)) {
    throw new UserError(`name ${quote(name)} is already used by a container: choose another name for the new base`);
  }
  const dir = registrationDir(settings.lxcpath, name);
  const rootfs = join(dir, 'rootfs');
  const config = committedConfig(parseLxcConfig(readFileSync(paths.config, 'utf8')), state, name, rootfs);
  // A --tmpfs container's memory layer is gone once it stopped: its disk layer is what it keeps.
  return { source, name, dir, rootfs, layers: [paths.wlayer, ...state.layers], config };
}

export function describeCommit(plan: CommitPlan): string {
  return [
    `# thin-lxc commit --dry-run: nothing was written. ${plan.layers.join(' over ')} would be copied to ${plan.rootfs},`,
    `# and ${plan.dir}/config would be:`,
    plan.config.trimEnd(),
  ].join('\n');
}

/** Copies, then writes the config last: LXC sees a container only once its config exists, so a failure leaves nothing it lists. */
export function applyCommit(plan: CommitPlan, options: { progress: boolean }): { name: string; dir: string; ms: number } {
  const started = performance.now();
  const { source, dir, rootfs, name } = plan;
  mkdirSync(dirname(dir), { recursive: true });
  mkdirSync(dir, { mode: 0o755 }); // EEXIST if a container of that name appeared meanwhile
  try {
    mkdirSync(rootfs, { mode: 0o755 });
    copyMergedView(source.state.fs, readOnlyOptions(source.state.fs, plan.layers), source.paths.rootfs, rootfs, options.progress ? 2 : undefined);
    for (const file of identityFiles([rootfs], name)) writeInside(rootfs, file.path, file.content);
    writeFileAtomic(join(dir, 'config'), plan.config, 0o640);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return { name, dir, ms: Math.round(performance.now() - started) };
}

/** Writes a file of the new rootfs, refusing a path whose folders lead out of it through a symlink (the container's own /etc could). */
function writeInside(rootfs: string, path: string, content: string): void {
  const full = join(rootfs, path);
  if (!`${realpathSync(dirname(full))}/`.startsWith(`${realpathSync(rootfs)}/`)) return;
  writeFileSync(full, content);
}

/**
 * The thin container's settings without what made it thin or gave it its identity (rootfs, hooks, name, MACs,
 * static address) and without its bind mounts and limits, which belong to it rather than to an image; then
 * the new container's own rootfs, name and MACs.
 */
function committedConfig(entries: readonly ConfigEntry[], state: { name: string; mounts: string[]; memory: string | null; cpus: string | null; hwaddrs: Record<string, string> }, name: string, rootfs: string): string {
  const binds = state.mounts.map((spec) => parseMount(spec, '/'));
  const ours = isLimitOf(state);
  const kept = entries.filter(
    (entry) => keptByThinContainer(entry) && !ours(entry) && !(entry.key === 'lxc.mount.entry' && binds.some((bind) => mountsBind(entry.value, bind))),
  );
  const macs = assignMacs(networkIndexes(kept), new Set(Object.values(state.hwaddrs)));
  return [
    `# LXC config of ${name}, committed by thin-lxc from thin container ${state.name} on ${new Date().toISOString()}.`,
    ...kept.map(formatEntry),
    `lxc.rootfs.path = dir:${rootfs}`,
    `lxc.uts.name = ${name}`,
    ...Object.entries(macs).map(([index, mac]) => `lxc.net.${index}.hwaddr = ${mac}`),
    '',
  ].join('\n');
}
