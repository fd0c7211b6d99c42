// thin-lxc commit: a stopped thin container's files as it sees them, copied into a standalone LXC container
// with a config of its own and no thin-lxc hooks: a golden image to boot with lxc-start or to stack thin
// containers on.
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { keptByThinContainer } from '../container/base.js';
import { findContainer, listContainers } from '../container/containers.js';
import { type ThinContainer } from '../state/paths.js';
import { identityFiles } from '../container/layers.js';
import { readState, type ThinState } from '../state/state.js';
import { BlockedPath, writeFileBeneath } from '../core/beneath.js';
import { copyMergedView, lxcState } from '../core/commands.js';
import { isNoSpace, noSpaceLeft, UserError } from '../core/errors.js';
import { removeTreeOnDevice, writeFileAtomic } from '../core/files.js';
import { withContainerLock } from '../core/lock.js';
import { settleKilledUpdates } from './update.js';
import { quote, validateName, parseMount } from '../core/validate.js';
import { type ConfigEntry, formatEntry, mountsBind, networkIndexes, parseLxcConfig } from '../lxc/config.js';
import { isLimitOf } from '../lxc/limits.js';
import { commitPurpose } from '../lifecycle/hooks.js';
import { isRunning, registrationDir } from '../lxc/lxcpath.js';
import { assignMacs } from '../network/addresses.js';
import { imageLayer, imageMountArgs, replayJournal, requireImageUnused } from '../union/disk-image.js';
import { formatIdMap, idmapMountCommand, idmapProblem, parseIdMap, shiftDown } from '../union/idmap.js';
import { readOnlyOptions } from '../union/mount.js';
import type { Settings } from './settings.js';

export interface CommitPlan {
  source: ThinContainer;
  name: string;
  dir: string;
  rootfs: string;
  /** The read-only layers copied, top first: the write layer over the base's. */
  layers: string[];
  /**
   * Commands run in the copy's own mount namespace before the union is mounted: for an unprivileged container,
   * the idmapped clones that show its layers stored shifted (root inside is HOSTID on disk) with the base's owners.
   */
  before: string[][];
  /** What `before` does, for --dry-run. */
  shifted: string | null;
  config: string;
  /** `dir` holds what an interrupted commit left, which this one removes first. */
  leftover: boolean;
}

/**
 * Written into the new container's directory before anything else, and removed after its config (written last):
 * a directory that has it and no config is what a commit that was interrupted left, and only such a directory
 * is ever removed to make room.
 */
const UNFINISHED = '.thin-lxc-commit';

/** What the new container's directory holds now: nothing, an interrupted commit's leftover, or anything else (taken). */
export function commitTarget(dir: string): 'free' | 'leftover' | 'taken' {
  const kind = (path: string) => {
    try {
      const stat = lstatSync(path);
      return stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : 'other';
    } catch {
      return 'none';
    }
  };
  const here = kind(dir);
  if (here === 'none') return 'free';
  return here === 'dir' && kind(join(dir, UNFINISHED)) === 'file' && kind(join(dir, 'config')) === 'none' ? 'leftover' : 'taken';
}

export function planCommit(target: string, newName: string, settings: Settings): CommitPlan {
  const source = findContainer(settings.root, target, settings.lxcpath);
  const { state, paths } = source;
  const name = validateName(newName, 'name');
  const lxc = lxcState(state.name, state.lxcpath);
  if (lxc !== 'STOPPED') throw new UserError(`${state.name} is ${lxc.toLowerCase()}: stop it first (lxc-stop -n ${state.name}), so that its files hold still while they are copied`);
  const dir = registrationDir(settings.lxcpath, name);
  const there = commitTarget(dir);
  if (there === 'taken' || listContainers(settings.root).some((other) => other.state.name === name)) throw nameTaken(name);
  const rootfs = join(dir, 'rootfs');
  const config = committedConfig(parseLxcConfig(readFileSync(paths.config, 'utf8')), state, name, rootfs);
  // A --tmpfs container's memory layer is gone once it stopped: its disk layer is what it keeps. A --disk image's
  // write layer is read where the copy's own namespace mounts the image.
  const image = state.diskMode === 'image';
  const wlayer = image ? imageLayer(paths.disk).upper : paths.wlayer;
  return { source, name, dir, rootfs, layers: [wlayer, ...state.layers], ...shiftedBack(state, wlayer, image), config, leftover: there === 'leftover' };
}

/**
 * An unprivileged container's write layer, and an unprivileged thin base's (same map), are stored shifted: each is
 * read through an idmapped clone mounted over itself with the inverse map (HOSTID.. shown as 0..), so the image is
 * owned as the base is and no shifted id leaks into it. The base's own layers are copied as they are. A --disk
 * image's write layer exists only once the copy's namespace mounted the image (ext4, which can be idmapped).
 */
function shiftedBack(state: ThinState, wlayer: string, inImage: boolean): Pick<CommitPlan, 'before' | 'shifted'> {
  if (state.idmap === null) return { before: [], shifted: null };
  const map = parseIdMap(state.idmap);
  const layers = [wlayer, ...state.shifted];
  const problem = idmapProblem(shiftDown(map), inImage ? state.shifted : layers);
  if (problem !== null) {
    throw new UserError(`${state.name} is unprivileged and its write layer cannot be read through an idmapped mount (${problem}): keep the thin-lxc root on a filesystem that can be idmapped (ext4, xfs, btrfs), or copy it yourself`);
  }
  return {
    before: [idmapMountCommand(shiftDown(map), layers.map((layer) => ({ source: layer, target: layer })))],
    shifted: `${layers.join(' and ')} (stored in the map ${formatIdMap(map)}) would be read with ids ${map.host}.. shown as 0..`,
  };
}

function nameTaken(name: string): UserError {
  return new UserError(`name ${quote(name)} is already used by a container: choose another name for the new base`);
}

export function describeCommit(plan: CommitPlan): string {
  return [
    ...(plan.leftover ? [`# ${plan.dir} holds what an interrupted commit left: it would be removed first.`] : []),
    `# thin-lxc commit --dry-run: nothing was written. ${plan.layers.join(' over ')} would be copied to ${plan.rootfs},`,
    ...(plan.source.state.diskMode === 'image' ? [`# with the disk image ${plan.source.paths.diskImage} mounted read-only at ${plan.source.paths.disk} in the copy's own namespace,`] : []),
    ...(plan.shifted ? [`# ${plan.shifted},`] : []),
    `# and ${plan.dir}/config would be:`,
    plan.config.trimEnd(),
  ].join('\n');
}

/**
 * Copies holding the container's lock, so that its start is refused meanwhile (its pre-mount hook says why),
 * and the new directory's, so that a second commit to the same name never takes this one's copy for a leftover.
 * Writes the config last: LXC sees a container only once its config exists, so a failure leaves nothing it lists.
 */
export function applyCommit(plan: CommitPlan, options: { progress: boolean }): { name: string; dir: string; ms: number } {
  const started = performance.now();
  const { source, dir, rootfs, name } = plan;
  const { state } = source;
  const purpose = commitPurpose(state.name, name);
  withContainerLock(source.paths.dir, purpose, (lockFd) => {
    // The plan was made before the wait: a replace or destroy meanwhile makes it another container's.
    if (!existsSync(source.paths.dir) || !sameContainer(readState(source.paths.dir), state)) {
      throw new UserError(`${state.name} changed while commit waited for it: run the same commit again`);
    }
    // An update killed between renaming its config and its state left a config the plan's state does not describe
    // (a bind mount it added would be copied into the image): finished now, and planned again.
    if (settleKilledUpdates(source.paths)) {
      throw new UserError(`${state.name}'s last update was cut short and has just been finished: nothing was copied; run the same commit again`);
    }
    // A start that came in between is seen by its monitor's socket: asking LXC would wait for that start's
    // hooks, which wait for this lock.
    if (isRunning(state.lxcpath, state.name)) {
      throw new UserError(`${state.name} was started while commit waited: stop it (lxc-stop -n ${state.name}), then commit again`);
    }
    // Its filesystem still mounted elsewhere (a post-stop hook not done yet): a second mount would be another ext4 over the same blocks.
    if (state.diskMode === 'image') {
      requireImageUnused(source.paths.diskImage, state.name, `nothing was copied; commit it again once that is done`);
      // A journal a crash left is replayed first: the copy's read-only loop device could not.
      replayJournal(source.paths.diskImage, state.name, lockFd);
    }
    withContainerLock(dir, purpose, () => {
      const target = commitTarget(dir);
      if (target === 'taken') throw nameTaken(name);
      if (target === 'leftover') removeTreeOnDevice(dir, `the unfinished commit ${dir}`);
      try {
        mkdirSync(dirname(dir), { recursive: true });
        // 0770 as lxc-create makes it, set before anything is copied in: an unprivileged container's root may
        // have left setuid programs that the copy makes setuid-root, and no other local user may reach them.
        mkdirSync(dir, { mode: 0o770 });
        chmodSync(dir, 0o770); // past the umask
      } catch (error) {
        throw isNoSpace(error) ? noSpace(dir, name, error) : error;
      }
      try {
        writeFileSync(join(dir, UNFINISHED), `Left by thin-lxc ${purpose} (pid ${process.pid}), which did not finish: the same commit again removes this directory.\n`);
        mkdirSync(rootfs, { mode: 0o755 });
        // The image first: the idmapped clone of its write layer is made over what it mounted.
        copyMergedView(state.fs, readOnlyOptions(state.fs, plan.layers), source.paths.rootfs, rootfs, options.progress ? 2 : undefined, [...imageMountCommand(source), ...plan.before]);
        for (const file of identityFiles([rootfs], name)) writeInside(rootfs, file.path, file.content);
        writeFileAtomic(join(dir, 'config'), plan.config, 0o640);
      } catch (error) {
        removeTreeOnDevice(dir, `the half-made container ${name}`);
        throw isNoSpace(error) ? noSpace(dir, name, error) : error;
      }
      rmSync(join(dir, UNFINISHED));
    }, 1000);
  });
  return { name, dir, ms: Math.round(performance.now() - started) };
}

function noSpace(dir: string, name: string, cause: unknown): UserError {
  return noSpaceLeft(dir, `the new base ${name} was not made`, 'or commit with --lxcpath on another filesystem', cause);
}

/** A --disk image, mounted read-only in the copy's namespace (the host never sees it) before the union over it. */
function imageMountCommand({ state, paths }: ThinContainer): string[][] {
  if (state.diskMode !== 'image') return [];
  mkdirSync(paths.disk, { recursive: true, mode: 0o700 });
  return [imageMountArgs(paths.diskImage, paths.disk)];
}

function sameContainer(now: ThinState, planned: ThinState): boolean {
  return now.created === planned.created && now.layers.join('\n') === planned.layers.join('\n');
}

/** Writes a file of the new rootfs, refusing a path whose folders lead out of it through a symlink (the container's own /etc could). */
/** The rootfs is a copy of what root in the container made: a symlink or device there is never written through. */
function writeInside(rootfs: string, path: string, content: string): void {
  try {
    writeFileBeneath(rootfs, path, content);
  } catch (error) {
    if (!(error instanceof BlockedPath)) throw error;
  }
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
