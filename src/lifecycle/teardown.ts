// Removing a thin container from the host, and finishing removals and creates that a killed process left
// half done. Shared by thin-lxc destroy, lxc-destroy's hook, the ephemeral hook and create (list and the
// other read commands leave leftovers to them), and every command's sweep of crashed ephemeral containers.
import { existsSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { oneLine, UserError } from '../core/errors.js';
import { isAlive } from '../core/exec.js';
import { refuseMountsUnder, removeTreeOnDevice } from '../core/files.js';
import { withContainerLock, withLock } from '../core/lock.js';
import { quote } from '../core/validate.js';
import { familiesToLook, removeForwarding } from '../forward/apply.js';
import { containerTag } from '../forward/rules.js';
import { isOurRegistration, isRunning, lxcContainerExists, registrationDir, unregister } from '../lxc/lxcpath.js';
import { removeDependent } from '../lxc/snapshots.js';
import { readBridge } from '../network/bridge.js';
import { clearProject } from '../union/quota.js';
import { releaseIfOwned, releaseLease } from '../network/dhcp.js';
import { dependentNames, entriesOf, isRealDirectory, refreshStateCache } from '../container/containers.js';
import { containerPaths, STARTED_DIR } from '../state/paths.js';
import { readState, type ThinState } from '../state/state.js';

/** Directories being built or removed: `.creating-ID-PID`, `.removing-ID-PID`. */
const IN_PROGRESS = /^\.(creating|removing)-(.+)-(\d+)$/;

export function inProgressName(kind: 'creating' | 'removing', id: string): string {
  return `.${kind}-${id}-${process.pid}`;
}

/**
 * The directory is first renamed to a dot name, the moment the container stops existing for list;
 * then its registration (unless LXC removes it itself), rules left by a crash and address reservation
 * go, then the files, never across a mount and never through a symlink. Removing what is gone succeeds.
 * `afterPortsDown`: its stop's ports-down has just run (the ephemeral hook), and removed its forwarding.
 */
export function teardown(containerDir: string, options: { expectedName?: string; unregister: boolean; afterPortsDown?: boolean }): void {
  if (!existsSync(containerDir)) return;
  if (!isRealDirectory(containerDir)) throw new UserError(`${containerDir} is not a directory (a symlink?): thin-lxc removes only what it made`);
  const state = readState(containerDir);
  if (options.expectedName !== undefined && state.name !== options.expectedName) {
    throw new UserError(`${containerDir} belongs to thin container ${quote(state.name)}, not ${quote(options.expectedName)}: nothing removed`);
  }
  const dependents = dependentNames(containerDir, state);
  if (dependents.length > 0) throw new UserError(`${state.name} is the base of thin containers ${dependents.join(', ')}: destroy them first`);
  // A user's bind mount under it would have its source's files removed: refused before anything changes.
  refuseMountsUnder(containerDir, `thin container ${state.name}'s directory`);
  if (options.unregister) refuseMountsUnder(registrationDir(state.lxcpath, state.name), `thin container ${state.name}'s registration`);
  const doomed = join(dirname(containerDir), inProgressName('removing', basename(containerDir)));
  renameSync(containerDir, doomed);
  forgetStart(containerPaths(dirname(containerDir), basename(containerDir)).started);
  releaseHostState(state, containerDir, options.unregister, options.afterPortsDown === true);
  removeTreeOnDevice(doomed, `thin container ${state.name}'s directory`);
  refreshStateCache(dirname(containerDir));
}

function releaseHostState(state: ThinState, containerDir: string, unregisterToo: boolean, afterPortsDown = false): void {
  const imageConfig = containerPaths(dirname(containerDir), basename(containerDir)).config;
  // Its entry in its base's lxc_snapshots, unless the name is registered again by someone else (whose entry it is).
  if (!lxcContainerExists(state.lxcpath, state.name) || isOurRegistration(state.lxcpath, state.name, imageConfig)) {
    removeDependent(state.base, { lxcpath: state.lxcpath, name: state.name });
  }
  if (unregisterToo) unregister(state.lxcpath, state.name, imageConfig);
  // What its starts installed, as recorded (before the rules go in): its state may have stopped publishing meanwhile,
  // and a stop's post-stop hook has usually removed it all already (the ephemeral hook runs after ports-down, which
  // also looked at the live ruleset). Nothing recorded for a container that publishes: started by thin-lxc 0.2, which
  // kept no record, or its record lost, then stopped by no hook (a crash), its rules are looked for in the live ruleset.
  if (state.veth) removeForwarding(containerTag(state.veth), { unrecorded: afterPortsDown ? [] : familiesToLook(state) });
  if (state.ip) {
    releaseIfOwned(state.name, state.hwaddrs['0']);
    endLease(state);
  }
  // A quota's limit is the filesystem's, not the directory's: it goes by the recorded project. An image goes with the directory.
  if (state.diskMode === 'quota' && state.diskMount && state.diskProject) clearProject(state.diskMount, Number(state.diskProject));
}

/**
 * Ends the container's DHCP lease: leases outlive their containers for an hour, and dnsmasq would not give
 * the address to another MAC (a container re-created with the same --ip) until then.
 */
function endLease(state: ThinState): void {
  const mac = state.hwaddrs['0'];
  if (!state.ip || !state.bridge || !mac) return;
  let server: string;
  try {
    server = readBridge(state.bridge).gateway;
  } catch {
    return; // No bridge, no dnsmasq serving it.
  }
  // Not awaited: the process sends it before it exits, and nothing here depends on dnsmasq's answer.
  releaseLease(server, state.ip, mac).catch(() => undefined);
}

/**
 * Finishes what a killed create or destroy left: its dot directory, and the registration, reservation
 * and rules it may have made, unless a container of that id exists again. Housekeeping: what it cannot remove is
 * kept (list ignores dot directories), said in the warnings it returns, and left to the next command.
 */
export function sweepLeftovers(root: string): string[] {
  const warnings: string[] = [];
  for (const entry of entriesOf(root)) {
    const match = IN_PROGRESS.exec(entry);
    if (!match || isAlive(Number(match[3]))) continue;
    const leftover = join(root, entry);
    try {
      const state = readState(leftover);
      const finalDir = join(root, state.id);
      if (!existsSync(finalDir)) releaseHostState(state, finalDir, true);
    } catch {
      // Killed before its state was written: there is nothing of it outside this directory.
    }
    try {
      removeTreeOnDevice(leftover, `${leftover}, left by a killed create or destroy,`);
    } catch (error) {
      // A mount inside it, an immutable file, a full or read-only filesystem: never a reason to fail this command.
      warnings.push(`cannot remove ${leftover}, left by a killed create or destroy: ${oneLine((error as Error).message)}`);
    }
  }
  return warnings;
}

/**
 * Removes ephemeral containers whose last run ended without their post-stop hook (lxc-start killed, the host
 * lost power): started once, and not running now. Run before each thin-lxc command, so that a crashed
 * ephemeral container is gone once the next one has run; reads one folder, and asks LXC only when there is
 * such a candidate. Housekeeping: a container it cannot remove is left, with the reason in `failed`, and the
 * command goes on; a base of thin containers is left alone until they are gone.
 */
export function sweepCrashedEphemeral(
  root: string,
  statusOf: (lxcpath: string, name: string) => string | undefined,
): { swept: string[]; failed: { name: string; reason: string }[] } {
  const swept: string[] = [];
  const failed: { name: string; reason: string }[] = [];
  for (const id of entriesOf(join(root, STARTED_DIR))) {
    const paths = containerPaths(root, id);
    let state: ThinState;
    try {
      state = readState(paths.dir);
    } catch {
      forgetStart(paths.started); // its container is gone
      continue;
    }
    if (!state.ephemeral) continue;
    try {
      // A live monitor: running, starting, or rebooting. LXC keeps its socket through a reboot's post-stop hooks,
      // while asking LXC then waits for them.
      if (isRunning(state.lxcpath, state.name)) continue;
      if ((statusOf(state.lxcpath, state.name) ?? 'STOPPED') !== 'STOPPED') continue;
      if (dependentNames(paths.dir, state).length > 0) continue;
      // Under its lock, like destroy: a start that came in between is seen, and one after it is refused by its pre-mount hook.
      withContainerLock(paths.dir, `remove crashed ephemeral ${state.name}`, () => {
        if (isRunning(state.lxcpath, state.name)) return;
        withLock('create', () => teardown(paths.dir, { expectedName: state.name, unregister: true }));
        swept.push(state.name);
      }, SWEEP_LOCK_WAIT_MS);
    } catch (error) {
      failed.push({ name: state.name, reason: oneLine((error as Error).message) });
    }
  }
  return { swept, failed };
}

/** Every command sweeps: one that someone else is working on is left to the next command, not waited for long. */
const SWEEP_LOCK_WAIT_MS = 2_000;

/** The folder goes with its last file, so that a root is left as empty as it was found. */
function forgetStart(path: string): void {
  rmSync(path, { force: true });
  try {
    rmdirSync(dirname(path));
  } catch {
    // Others' starts are still in it, or it was never made.
  }
}
