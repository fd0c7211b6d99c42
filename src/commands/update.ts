// thin-lxc update: changes a thin container after create (published ports, bind mounts, autostart, limits).
// Ports change at once on a running container, in one iptables-restore; the rest from its next start.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { availableParallelism } from 'node:os';
import { findContainer, knownContainers, refreshStateCache } from '../container/containers.js';
import type { ContainerPaths, ThinContainer } from '../state/paths.js';
import { serializeState, type ThinState } from '../state/state.js';
import { lxcStatuses, lxcSetCgroup, MONITOR_ANSWER_MS, type LxcStatus } from '../core/commands.js';
import { isNoSpace, noSpaceLeft, UserError } from '../core/errors.js';
import { removeStaleTemporaries, settleStaged, stageFiles } from '../core/files.js';
import { withContainerLock, withLock } from '../core/lock.js';
import { formatMount, formatPublish, parseMount, parsePublish, quote, splitList, validateCpus, validateDisk, validateMemory } from '../core/validate.js';
import { familiesToLook, forwardTarget, installForwarding, recordedGeneration, removeForwarding } from '../forward/apply.js';
import { checkPublishConflicts, describeClash, portClashes } from '../forward/ports.js';
import { containerTag } from '../forward/rules.js';
import { mountEntryValue, mountsBind, planMounts, replaceEntries } from '../lxc/config.js';
import { checkInstallation, thinHookOf, thinHooks } from '../lxc/install.js';
import { hookNeeds } from '../lifecycle/hook-needs.js';
import { hostCgroupVersion, isLimitOf, limitLines, liveLimitWrites } from '../lxc/limits.js';
import { monitorSocket } from '../lxc/lxcpath.js';
import { withHookLines } from '../lxc/render.js';
import { chooseProject, clearProject, limitProject, projectsInUse, setLimit } from '../union/quota.js';
import { growImage } from '../union/disk-image.js';
import { overcommitOf, readDiskMechanism, requireReachable } from '../union/disk.js';
import { imagesOf } from './create.js';
import type { Settings } from './settings.js';

export interface UpdateRequest {
  publish?: string[] | undefined;
  unpublish?: string[] | undefined;
  mount?: string[] | undefined;
  unmount?: string[] | undefined;
  /** true or false to switch it; undefined leaves it. */
  autostart?: boolean | undefined;
  /** A size, or `none` to lift the limit. */
  memory?: string | undefined;
  cpus?: string | undefined;
  /** The write layer's limit on disk: a size, or `none`. */
  disk?: string | undefined;
  /** Publish host ports even where a host process listens on them. */
  force?: boolean | undefined;
}

export interface UpdatePlan {
  container: ThinContainer;
  after: ThinState;
  config: string;
  running: { pid: string | null } | null;
  changed: boolean;
  /** What the user should know: what waits for the next start. */
  notes: string[];
  /** The --disk change to make on the host, if any. */
  disk: DiskChange | null;
  /** What the user should know but that does not stop the update (stderr): a limit the filesystem cannot back. */
  warnings: string[];
}

/** A quota's new limit (0: none; `tag`: the layer's files put in the project first), or an image grown. */
type DiskChange =
  | { kind: 'limit'; mountPoint: string; project: number; bytes: number; was: number; tag: string[] }
  | { kind: 'grow'; image: string; bytes: number; name: string };

/**
 * Plans and applies holding the container's lock (against other commands and its hooks), and the create lock too when
 * the update takes host ports or a quota project id (host-wide), reading its state under them. LXC is asked whether it runs before they are
 * taken: it answers only once a start's hooks are done, and those hooks wait for the container's lock. If the
 * container started or stopped in between (another LXC monitor), it looks again.
 */
export function update(target: string, request: UpdateRequest, settings: Settings, cwd: string, dryRun: boolean): UpdatePlan {
  const statusOf = (state: ThinState) => lxcStatuses(state.lxcpath).get(state.name);
  if (dryRun) {
    const { state } = findContainer(settings.root, target, settings.lxcpath);
    return planUpdate(target, request, settings, cwd, statusOf(state));
  }
  for (let attempt = 1; ; attempt++) {
    const { state, paths } = findContainer(settings.root, target, settings.lxcpath);
    const status = statusOf(state);
    const monitor = monitorSocket(state.lxcpath, state.name);
    const plan = withContainerLock(paths.dir, `update ${state.name}`, (lockFd) => {
      // An update killed in its renames is finished (its config is in place: the state follows), one killed
      // before them undone, before anything reads the state: the config is edited from the state it was made from.
      settleKilledUpdates(paths);
      // Writers of one file (refresh) killed mid-write left their temporaries: nothing else sweeps them.
      removeStaleTemporaries(paths.config);
      removeStaleTemporaries(paths.state);
      if (monitorSocket(state.lxcpath, state.name) !== monitor) return null;
      const planAndApply = () => {
        const plan = planUpdate(target, request, settings, cwd, status);
        if (plan.container.paths.dir !== paths.dir) return null;
        applyUpdate(plan, settings, lockFd);
        return plan;
      };
      // 'create' guards what is the host's (host ports, quota project ids); a disk image's grow (e2fsck and
      // resize2fs: minutes on a big image) needs only the container's lock, and holding 'create' across it would
      // make every create, destroy and ephemeral teardown on the host time out. Planned again under 'create'.
      const first = planUpdate(target, request, settings, cwd, status);
      if (first.container.paths.dir !== paths.dir) return null;
      return needsCreateLock(first) ? withLock('create', planAndApply) : (applyUpdate(first, settings, lockFd), first);
    });
    if (plan) return plan;
    if (attempt === 3) throw new UserError(`${state.name} started or stopped, or was re-created, each time update looked: run the update again`);
  }
}

/** Whether applying `plan` takes host-wide things that creates check under the 'create' lock: host ports, a new quota project id. */
function needsCreateLock(plan: UpdatePlan): boolean {
  return plan.after.publish.join() !== plan.container.state.publish.join() || (plan.disk?.kind === 'limit' && plan.disk.tag.length > 0);
}

/** What update's staged config and state are named after (`.config.update-PID`), so settleStaged finds only its own. */
const STAGED = 'update';

/**
 * Settles what updates killed while they wrote the container's config and state left (see settleStaged): the
 * config is renamed first, so a state still staged beside a config already in place is renamed into place too.
 * The caller holds the container's lock; everything that writes the state under it calls this first.
 */
export function settleKilledUpdates(paths: ContainerPaths): boolean {
  // Called holding the container's lock, which an update holds from staging to its last rename: no writer of these
  // is at work, whatever process has its pid now (a pid is reused after a reboot, or when pids wrap).
  return settleStaged([paths.config, paths.state], STAGED, () => false);
}

/** `status`: LXC's, asked before the caller took the container's lock. */
export function planUpdate(target: string, request: UpdateRequest, settings: Settings, cwd: string, status: LxcStatus | undefined): UpdatePlan {
  // Its hook lines name this installation and node, which LXC runs as root.
  checkInstallation();
  const container = findContainer(settings.root, target, settings.lxcpath);
  const { state: before, paths } = container;

  const added = splitList(request.publish).map(parsePublish);
  const removed = splitList(request.unpublish).map((spec) => matchPublish(spec, before));
  const kept = before.publish.filter((spec) => !removed.includes(spec));
  const addedSpecs = added.map(formatPublish).filter((spec) => !kept.includes(spec));
  const publish = [...kept, ...addedSpecs];
  if (addedSpecs.length > 0 && (!before.ip || !before.veth)) {
    throw new UserError(`${before.name} has no static address on a bridge to forward ports to: re-create it with create --replace and --ip or a base on lxcbr0`);
  }
  const newPublishes = addedSpecs.map(parsePublish);
  const v6Only = newPublishes.find((publish) => publish.family === 6);
  if (v6Only && !before.ip6) {
    throw new UserError(`publish ${formatPublish(v6Only)} is on IPv6, and ${before.name} has no IPv6 address (its bridge had none when it was made): re-create it with create --replace`);
  }
  // Host ports are the host's: thin containers of other roots registered in the lxcpath publish on them too.
  const others = knownContainers(settings.root, settings.lxcpath).filter((other) => other.paths.dir !== paths.dir);
  checkPublishConflicts(publish.map(parsePublish), others.map((other) => other.state));
  const clash = request.force ? undefined : portClashes(newPublishes)[0];
  if (clash) throw new UserError(`${describeClash(clash)}: publishing it would take it away from them; choose another host port, or pass --force`);

  const unmounts = splitList(request.unmount).map((spec) => matchMount(spec, before, cwd));
  const planned = planMounts(splitList(request.mount), cwd);
  const mounts = [...before.mounts.filter((spec) => !unmounts.includes(spec)), ...planned.mounts.map(formatMount).filter((spec) => !before.mounts.includes(spec))];
  const targets = mounts.map((spec) => parseMount(spec, cwd).container);
  const twice = targets.find((path, index) => targets.indexOf(path) !== index);
  if (twice) throw new UserError(`two mounts would share the container path ${twice}: remove one with --unmount ${twice}`);

  const limit = (value: string | undefined, current: string | null, validate: (value: string) => string) =>
    value === undefined ? current : value === 'none' ? null : validate(value);
  const after: ThinState = {
    ...before,
    publish,
    mounts,
    autostart: request.autostart ?? before.autostart,
    memory: limit(request.memory, before.memory, validateMemory),
    cpus: limit(request.cpus, before.cpus, (value) => validateCpus(value, availableParallelism())),
  };
  if (after.autostart && after.ephemeral) throw new UserError(`${before.name} is ephemeral, gone after its first stop: it cannot autostart`);

  const oldConfig = readFileSync(paths.config, 'utf8');
  const version = hostCgroupVersion();
  let config = replaceEntries(oldConfig, (entry) => entry.key === 'lxc.start.auto', after.autostart ? [{ key: 'lxc.start.auto', value: '1' }] : [], 'Autostart (thin-lxc update).');
  config = replaceEntries(config, isLimitOf(before), limitLines(after, version), 'Resource limits (thin-lxc update), for this host\'s cgroup version.');
  const goneMounts = before.mounts.filter((spec) => !mounts.includes(spec)).map((spec) => parseMount(spec, cwd));
  const newEntries = planned.entries.filter((_, index) => !before.mounts.includes(formatMount(planned.mounts[index]!)));
  config = replaceEntries(
    config,
    (entry) => entry.key === 'lxc.mount.entry' && goneMounts.some((mount) => mountsBind(entry.value, mount)),
    newEntries.map((entry) => ({ key: 'lxc.mount.entry', value: mountEntryValue(entry) })),
    'Bind mounts (thin-lxc update).',
  );
  config = withHookLines(config, thinHooks(paths.dir, hookNeeds(after)), 'Port forwarding at start (thin-lxc update).');

  const running = status && status.state !== 'STOPPED' ? { pid: status.pid } : null;
  if (running && publish.join() !== before.publish.join() && !oldConfig.split('\n').some((line) => thinHookOf(line) === 'ports-down')) {
    // LXC read the config at start: without that hook, rules added now would outlive the container.
    throw new UserError(
      `${before.name} runs with a config from before thin-lxc 0.3, without the post-stop hook that would remove new rules at its stop: ` +
        `stop it (lxc-stop -n ${before.name}), then run this update again`,
    );
  }
  const disk = request.disk === undefined ? null : planDisk(before, paths, request.disk, running !== null, dirname(paths.dir), others);
  if (disk) Object.assign(after, disk.fields);
  const changed = config !== oldConfig || serializeState(after) !== serializeState(before);
  const notes: string[] = [];
  if (running && (goneMounts.length > 0 || newEntries.length > 0)) {
    notes.push(`mount changes take effect at ${before.name}'s next start: lxc-stop -n ${before.name} && lxc-start -n ${before.name} -d`);
  }
  return { container, after, config, running, changed, notes, disk: disk?.change ?? null, warnings: disk?.warnings ?? [] };
}

/**
 * --disk on an existing container. A quota changes at any time; one added later puts the files already there in
 * the project too (while stopped: nothing then swaps them under the walk). An image only grows, while stopped
 * (its filesystem is mounted while it runs); it is made at create, and its files live in it, so it never goes.
 */
function planDisk(
  before: ThinState,
  paths: ContainerPaths,
  asked: string,
  running: boolean,
  root: string,
  others: readonly ThinContainer[],
): { fields: Partial<ThinState>; change: DiskChange | null; warnings?: string[] } | null {
  const bytes = asked === 'none' ? null : validateDisk(asked);
  const name = before.name;
  if (bytes === before.disk) return null;
  if (bytes !== null) requireReachable(root, Number(bytes), asked);
  if (before.tmpfs !== null) throw new UserError(`${name} keeps its write layer in a tmpfs, already limited by its size (${before.tmpfs}): --disk does not apply`);
  if (before.diskMode === 'image') {
    if (bytes === null) throw new UserError(`${name}'s write layer lives in its disk image, which cannot be taken away: commit it (thin-lxc commit ${name} NEW) and create from NEW without --disk`);
    if (Number(bytes) < Number(before.disk)) throw new UserError(`${name}'s disk image cannot shrink (${before.disk} to ${bytes} bytes): give a size of at least ${before.disk} bytes`);
    if (running) throw new UserError(`${name} is running, and its disk image grows only while it is stopped: lxc-stop -n ${name}, then update again`);
    const warning = overcommitOf(root, name, asked, Number(bytes), paths.diskImage, imagesOf(others, paths.dir));
    return { fields: { disk: bytes }, change: { kind: 'grow', image: paths.diskImage, bytes: Number(bytes), name }, warnings: warning === null ? [] : [warning] };
  }
  if (before.diskMode === 'quota') {
    const mountPoint = before.diskMount!;
    const project = Number(before.diskProject);
    if (bytes === null) return { fields: { disk: null, diskMode: null, diskProject: null, diskMount: null }, change: { kind: 'limit', mountPoint, project, bytes: 0, was: Number(before.disk), tag: [] } };
    return { fields: { disk: bytes }, change: { kind: 'limit', mountPoint, project, bytes: Number(bytes), was: Number(before.disk), tag: [] } };
  }
  if (bytes === null) return null;
  const mechanism = readDiskMechanism(root, readFileSync('/proc/self/mountinfo', 'utf8'));
  if (mechanism.mode === 'image') {
    throw new UserError(`${name}'s root has no project quota, so its limit would be a disk image, which is made at create: re-create it with --disk (commit it first to keep its files)`);
  }
  if (running) throw new UserError(`${name} is running: a limit added later puts its files in a quota project, which is done while it is stopped: lxc-stop -n ${name}, then update again`);
  const taken = new Set([...projectsInUse(mechanism.mountPoint).keys(), ...others.filter((other) => other.state.diskMode === 'quota').map((other) => Number(other.state.diskProject))]);
  const project = chooseProject(paths.dir, taken);
  return {
    fields: { disk: bytes, diskMode: 'quota', diskProject: String(project), diskMount: mechanism.mountPoint },
    change: { kind: 'limit', mountPoint: mechanism.mountPoint, project, bytes: Number(bytes), was: 0, tag: [paths.wlayer, paths.work] },
  };
}

/** `lockFd`: the container's lock, which an image's tools are given (they hold it as long as they write the image). */
function applyDisk(change: DiskChange, lockFd: number): void {
  if (change.kind === 'grow') return growImage(change.image, change.bytes, change.name, lockFd);
  if (change.tag.length > 0) return limitProject(change.tag, change.mountPoint, change.project, change.bytes, true);
  if (change.bytes === 0) return clearProject(change.mountPoint, change.project);
  setLimit(change.mountPoint, change.project, change.bytes);
}

/** `--unpublish` takes a published spec, or its host port (`8080`, `8080/udp`). */
function matchPublish(spec: string, state: ThinState): string {
  const port = /^(\d+)(?:\/(tcp|udp))?$/.exec(spec);
  const found = port
    ? state.publish.find((published) => {
        const parsed = parsePublish(published);
        return parsed.host.first === Number(port[1]) && parsed.protocol === (port[2] ?? 'tcp');
      })
    : state.publish.find((published) => published === formatPublish(parsePublish(spec)));
  if (!found) throw new UserError(`${state.name} does not publish ${quote(spec)}: it publishes ${state.publish.join(', ') || 'nothing'}`);
  return found;
}

/** `--unmount` takes the container path, or the whole HOST:CONTAINER spec. */
function matchMount(spec: string, state: ThinState, cwd: string): string {
  const found = state.mounts.find((mounted) => mounted === spec || parseMount(mounted, cwd).container === spec.replace(/(.)\/$/, '$1') || (spec.includes(':') && mounted === formatMount(parseMount(spec, cwd))));
  if (!found) throw new UserError(`${state.name} has no mount ${quote(spec)}: it mounts ${state.mounts.join(', ') || 'nothing'}`);
  return found;
}

/**
 * Stages the new config and state first (a full disk changes nothing); then changes the disk limit, and on a
 * running container replaces its forwarding in one iptables-restore (the old and new rules never both missing,
 * nothing stale) and sets its new limits through its cgroup; then renames the staged files into place.
 * All or nothing: if a change fails, what was applied is put back and the staged files are discarded, so the
 * same update again tries again instead of finding it "unchanged". An update killed before the renames left
 * the files as they were, and its temporaries beside them (the next update removes those); one killed between
 * them left its state staged, which the next update (or refresh) renames into place. The caller holds the
 * container's lock (and the create lock when needsCreateLock says so).
 */
function applyUpdate(plan: UpdatePlan, settings: Settings, lockFd: number): void {
  if (!plan.changed) return;
  const { container, after, running } = plan;
  // Written before anything is applied, renamed into place after: a full disk changes nothing.
  let files;
  try {
    // In this order: settleKilledUpdates counts on the config being renamed first.
    files = stageFiles(
      [
        { path: container.paths.config, content: plan.config, mode: 0o644 },
        { path: container.paths.state, content: serializeState(after), mode: 0o644 },
      ],
      STAGED,
    );
  } catch (error) {
    if (isNoSpace(error)) throw noSpaceLeft(container.paths.dir, `thin container ${container.state.name} was not updated`, 'then update it again', error);
    throw error;
  }
  try {
    if (plan.disk) applyDisk(plan.disk, lockFd);
    try {
      if (running) applyLive(container.state, after, running);
    } catch (error) {
      // All or nothing: a quota's limit is put back (an image grows only when stopped, where nothing runs live).
      if (plan.disk?.kind === 'limit') setLimit(plan.disk.mountPoint, plan.disk.project, plan.disk.was);
      throw error;
    }
  } catch (error) {
    files.discard();
    throw error;
  }
  files.commit();
  refreshStateCache(settings.root);
}

function applyLive(before: ThinState, after: ThinState, running: { pid: string | null }): void {
  const undo: (() => void)[] = [];
  try {
    if (after.publish.join() !== before.publish.join() && after.veth) {
      // Put back also when it fails: a failed install leaves none of the container's rules.
      undo.push(() => forwardAs(before, running, after));
      forwardAs(after, running, before);
    }
    if (after.memory !== before.memory || after.cpus !== before.cpus) {
      const version = hostCgroupVersion();
      undo.push(() => {
        for (const { file, value } of liveLimitWrites(after, before, version)) lxcSetCgroup(after.name, after.lxcpath, file, value);
      });
      for (const { file, value } of liveLimitWrites(before, after, version)) {
        let answer: 'set' | 'busy';
        try {
          answer = lxcSetCgroup(after.name, after.lxcpath, file, value);
        } catch (error) {
          throw new UserError(
            `the kernel refused ${file} = ${value} for ${after.name}, which runs (on cgroup v1 a memory limit below what it uses now is refused): ` +
              `nothing was changed; lower its use, choose another value, or stop it and run this update again`,
            { cause: error },
          );
        }
        if (answer === 'busy') {
          throw new UserError(
            `LXC did not answer for ${after.name} within ${MONITOR_ANSWER_MS / 1000} s (it is starting, stopping or rebooting, its hooks running): nothing was changed; run this update again`,
          );
        }
      }
    }
  } catch (error) {
    for (const step of undo.reverse()) {
      try {
        step();
      } catch {
        // The original failure says what to do; the next start applies the files, which are unchanged.
      }
    }
    throw error;
  }
}

/**
 * The forwarding `state` asks for, on its running container, recorded as the running start's. Where nothing is
 * recorded (started by thin-lxc 0.2, or its record lost), what `previous` published is looked for in the live
 * ruleset: once the state publishes nothing, no stop or destroy looks there any more.
 */
function forwardAs(state: ThinState, running: { pid: string | null }, previous: ThinState): void {
  if (!state.veth) return;
  const target = forwardTarget(state);
  const tag = containerTag(state.veth);
  const options = { reconcile: true, unrecorded: familiesToLook(previous) };
  if (target && state.bridge) installForwarding(target, state.bridge, state.veth, recordedGeneration(tag) ?? running.pid ?? '', options);
  else removeForwarding(tag, options);
}

export function formatUpdate(plan: UpdatePlan, dryRun: boolean): string {
  const { container, after } = plan;
  const name = container.state.name;
  if (!plan.changed) return `Thin container ${name} is unchanged.`;
  const before = container.state;
  const list = (values: readonly string[]) => values.join(', ') || 'none';
  const lines = [
    ...(before.publish.join() !== after.publish.join() ? [`ports: ${list(after.publish)}${plan.running ? (dryRun ? ' (at once)' : ' (in effect now)') : ''}`] : []),
    ...(before.mounts.join() !== after.mounts.join() ? [`mounts: ${list(after.mounts)}`] : []),
    ...(before.autostart !== after.autostart ? [`autostart: ${after.autostart ? 'yes' : 'no'}`] : []),
    ...(before.memory !== after.memory ? [`memory: ${after.memory ?? 'no limit'}`] : []),
    ...(before.cpus !== after.cpus ? [`cpus: ${after.cpus ?? 'no limit'}`] : []),
    ...(before.disk !== after.disk ? [`disk: ${after.disk ?? 'no limit'}${after.diskMode === 'quota' ? ' (project quota, in effect now)' : ''}`] : []),
  ];
  return [`${dryRun ? 'Would update' : 'Updated'} thin container ${name}:`, ...lines.map((line) => `  ${line}`), ...plan.notes.map((note) => `Note: ${note}`)].join('\n');
}
