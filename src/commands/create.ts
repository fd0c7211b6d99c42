// thin-lxc create: plans a thin container as plain data, then writes it in one place.
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { baseConfigLines, resolveBase, type Base } from '../container/base.js';
import { dependentNames, knownContainers, listContainers, listContainersToAdd, refreshStateCache } from '../container/containers.js';
import { containerPaths, type ContainerPaths, type ThinContainer } from '../state/paths.js';
import { identityFiles, writeLayerFile, type LayerFile } from '../container/layers.js';
import { serializeState, type ThinState } from '../state/state.js';
import { inProgressName, sweepLeftovers, teardown } from '../lifecycle/teardown.js';
import { lxcState, lxcStopNow } from '../core/commands.js';
import { closeDirectory } from '../container/access.js';
import { isNoSpace, noSpaceLeft, UserError } from '../core/errors.js';
import { removeTreeOnDevice } from '../core/files.js';
import { withContainerLock, withLock } from '../core/lock.js';
import {
  formatMount,
  formatPublish,
  parseMount,
  parsePublish,
  quote,
  splitList,
  validateCpus,
  validateDisk,
  validateIPv4,
  validateIPv6,
  validateMemory,
  validateName,
  validateTmpfsSize,
} from '../core/validate.js';
import { forwardTarget } from '../forward/apply.js';
import { checkPublishConflicts, describeClash, portClashes } from '../forward/ports.js';
import { containerRules, vethName } from '../forward/rules.js';
import { networkIndexes } from '../lxc/config.js';
import { planMounts } from '../lxc/config.js';
import { checkInstallation, pathAndParents, thinHooks, thinLxcVersion } from '../lxc/install.js';
import { hookNeeds } from '../lifecycle/hook-needs.js';
import { hostCgroupVersion, limitLines } from '../lxc/limits.js';
import { containersWithMac, isRunning, lxcContainerExists, register, registrationDir, runningAddresses, unregister } from '../lxc/lxcpath.js';
import { hookView, readTemplate, renderConfig, renderDefaultConfig, type ConfigView } from '../lxc/render.js';
import { addDependent, lxcLockAlongside, releaseLxcLockAlongside, removeDependent } from '../lxc/snapshots.js';
import { chooseAddress, chooseAddress6, claimAddress, networkOf } from '../network/addresses.js';
import { assignMacs } from '../network/addresses.js';
import type { Bridge } from '../network/bridge.js';
import { HOSTS_DIR, release, reserve } from '../network/dhcp.js';
import { broadcastOf, formatSubnet, toAddress } from '../network/ipv4.js';
import { formatSubnet6 } from '../network/ipv6.js';
import { chooseProject, clearProject, limitProject, projectsInUse } from '../union/quota.js';
import { imageLayer, makeImage, removeStaged } from '../union/disk-image.js';
import { overcommitOf, readDiskMechanism, requireReachable } from '../union/disk.js';
import { hostDefaultMap, requireRootRanges } from '../lxc/subids.js';
import { formatIdMap, idmapProblem, parseIdMap, shiftUp, type IdMap } from '../union/idmap.js';
import { UNION_FILESYSTEMS, requireKernelSupport, type UnionFs } from '../union/mount.js';
import type { Settings } from './settings.js';

export interface CreateRequest {
  name: string;
  base: string;
  id?: string | undefined;
  ip?: string | undefined;
  ip6?: string | undefined;
  publish?: string[] | undefined;
  mount?: string[] | undefined;
  fs?: string | undefined;
  autostart?: boolean | undefined;
  /** A Handlebars template file to render the config with instead of templates/config.hbs. */
  template?: string | undefined;
  /** Publish host ports even where a host process listens on them. */
  force?: boolean | undefined;
  /** Destroyed once it stops. */
  ephemeral?: boolean | undefined;
  /** The write layer in memory: true for tmpfs' default size, or a size. */
  tmpfs?: boolean | string | undefined;
  memory?: string | undefined;
  cpus?: string | undefined;
  /** The write layer's limit on disk, e.g. 2G. */
  disk?: string | undefined;
  /** Replace a container of the same name whose spec differs, instead of refusing. */
  replace?: boolean | undefined;
  /** In a user namespace: with the default map, or the one --idmap gives (which implies it). */
  unprivileged?: boolean | undefined;
  idmap?: string | undefined;
  /** Privileged even where the settings make unprivileged the default. */
  privileged?: boolean | undefined;
}

/**
 * What the request asks for, normalised so that the same command gives the same spec: the state's fields a
 * user chooses, with the id and address null when left to create.
 */
export type CreateSpec = Pick<ThinState, 'name' | 'base' | 'fs' | 'ip' | 'ip6' | 'publish' | 'mounts' | 'autostart' | 'ephemeral' | 'tmpfs' | 'memory' | 'cpus' | 'template' | 'disk' | 'idmap'> & {
  id: string | null;
};

/** The default tmpfs size, tmpfs' own: half the host's memory. */
const TMPFS_DEFAULT = '50%';

/** Checks every value of the request; nothing on the host is looked at but the base, the mount sources and the template. */
function createSpec(request: CreateRequest, settings: Settings, cwd: string): CreateSpec {
  const name = validateName(request.name, 'name');
  const ephemeral = request.ephemeral === true;
  const autostart = request.autostart === true;
  if (ephemeral && autostart) {
    throw new UserError('--ephemeral and --autostart contradict each other (an ephemeral container is gone after its first stop): choose one');
  }
  if (request.disk !== undefined && request.tmpfs !== undefined && request.tmpfs !== false) {
    throw new UserError('--disk and --tmpfs do not go together (a tmpfs write layer is already limited by its size, --tmpfs=512M): choose one');
  }
  return {
    name,
    id: request.id === undefined ? null : validateName(request.id, 'id'),
    base: resolveBase(request.base, settings.lxcpath, cwd).dir,
    fs: parseFs(request.fs),
    ip: request.ip === undefined ? null : validateIPv4(request.ip),
    ip6: request.ip6 === undefined ? null : validateIPv6(request.ip6),
    publish: splitList(request.publish).map(parsePublish).map(formatPublish),
    mounts: splitList(request.mount).map((spec) => formatMount(parseMount(spec, cwd))),
    autostart,
    ephemeral,
    tmpfs: request.tmpfs === undefined || request.tmpfs === false ? null : request.tmpfs === true ? TMPFS_DEFAULT : validateTmpfsSize(request.tmpfs),
    memory: request.memory === undefined ? null : validateMemory(request.memory),
    cpus: request.cpus === undefined ? null : validateCpus(request.cpus, availableParallelism()),
    template: request.template === undefined ? null : templateDigest(readTemplate(resolve(cwd, request.template))),
    disk: request.disk === undefined ? null : validateDisk(request.disk),
    idmap: idmapOf(request, settings),
  };
}

/** The container's map as HOSTID:RANGE, or null for a privileged one: the flags, else the settings' default. */
function idmapOf(request: CreateRequest, settings: Settings): string | null {
  if (request.privileged && (request.unprivileged || request.idmap !== undefined)) {
    throw new UserError('--privileged contradicts --unprivileged and --idmap: choose one');
  }
  if (request.idmap !== undefined) return formatIdMap(parseIdMap(request.idmap));
  if (request.unprivileged) return settings.unprivileged ?? formatIdMap(hostDefaultMap());
  if (request.privileged) return null;
  return settings.unprivileged ?? null;
}

function templateDigest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * How an existing container differs from the spec, one phrase per field: empty when re-running the create
 * would make the same container. What the spec leaves open (an address chosen for it) is no difference.
 */
export function specDifferences(spec: CreateSpec, state: ThinState): string[] {
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
  const show = (value: string | boolean | null | readonly string[]) =>
    Array.isArray(value) ? value.join(',') || 'none' : value === null ? 'none' : String(value);
  const fields: [string, unknown, unknown, boolean][] = [
    ['id', state.id, spec.id, spec.id === null || spec.id === state.id],
    ['base', state.base, spec.base, spec.base === state.base],
    ['fs', state.fs, spec.fs, spec.fs === state.fs],
    ['ip', state.ip, spec.ip, spec.ip === null || spec.ip === state.ip],
    ['ip6', state.ip6, spec.ip6, spec.ip6 === null || spec.ip6 === state.ip6],
    ['publish', state.publish, spec.publish, same(spec.publish, state.publish)],
    ['mount', state.mounts, spec.mounts, same(spec.mounts, state.mounts)],
    ['autostart', state.autostart, spec.autostart, spec.autostart === state.autostart],
    ['ephemeral', state.ephemeral, spec.ephemeral, spec.ephemeral === state.ephemeral],
    ['tmpfs', state.tmpfs, spec.tmpfs, spec.tmpfs === state.tmpfs],
    ['memory', state.memory, spec.memory, spec.memory === state.memory],
    ['cpus', state.cpus, spec.cpus, spec.cpus === state.cpus],
    ['template', state.template, spec.template, spec.template === state.template],
    ['disk', state.disk, spec.disk, spec.disk === state.disk],
    ['idmap', state.idmap, spec.idmap, spec.idmap === state.idmap],
  ];
  return fields
    .filter(([, , , equal]) => !equal)
    .map(([field, has, asked]) => `${field} is ${show(has as string)}, asked ${show(asked as string)}`);
}

export interface CreatePlan {
  state: ThinState;
  paths: ContainerPaths;
  config: string;
  /** Files written into the write layer before the first start. */
  layerFiles: LayerFile[];
  /** Things the user should know that do not stop the create. */
  warnings: string[];
  /** A requested address, which a host the bridge still remembers, or a stale DHCP lease, may hold. */
  claim: { bridge: Bridge; address: string } | null;
}

/** What create would do, for --dry-run: the config, the files, the address, the mounts and the rules. */
export function describePlan(plan: CreatePlan): string {
  const { state, paths } = plan;
  const target = forwardTarget(state);
  const rules = target ? containerRules(target) : null;
  const mac = state.hwaddrs['0'];
  return [
    `# thin-lxc create --dry-run: nothing was written. ${paths.config} would be:`,
    plan.config.trimEnd(),
    '',
    `# Directories: ${paths.dir}/{image/rootfs,wlayer,work}; state ${paths.state}; registration ${registrationDir(state.lxcpath, state.name)}/config`,
    `# Files in the write layer: ${plan.layerFiles.map((file) => `/${file.path}`).join(', ') || 'none'}`,
    `# Address: ${state.ip && mac ? `${state.ip}, reserved for ${mac} in ${HOSTS_DIR}/${state.name}` : 'none'}`,
    ...(plan.claim ? [`# (create checks that no live host answers for ${plan.claim.address} and ends a stale DHCP lease of it)`] : []),
    `# Bind mounts: ${state.mounts.join(', ') || 'none'}`,
    `# Disk limit: ${describeDisk(state, paths)}`,
    state.idmap
      ? `# Unprivileged (map ${state.idmap}): the write layer is owned by ${state.idmap.split(':')[0]} on the host; ${idmappedLayers(state).join(', ') || 'no layer'} shown through idmapped mounts at start`
      : '# Privileged: root inside is root on the host',
    rules ? '# Forwarding rules installed at each start (iptables-restore --noflush), removed at stop:' : '# Forwarding rules: none',
    ...(rules ? ['*nat', ...rules.nat, '*filter', ...rules.filter] : []),
  ].join('\n');
}

function idmappedLayers(state: ThinState): string[] {
  return state.layers.filter((layer) => !state.shifted.includes(layer));
}

export type CreateOutcome =
  | { action: 'created' | 'replaced'; changed: true; state: ThinState; plan: CreatePlan }
  | { action: 'unchanged'; changed: false; state: ThinState };

/**
 * Re-running the same create is a no-op ('unchanged'), as configuration management needs; the same name with
 * another spec is refused, naming the differences, unless the request says to replace it.
 */
function existingOutcome(spec: CreateSpec, request: CreateRequest, others: readonly ThinContainer[]): { container: ThinContainer; replace: boolean } | null {
  const existing = others.find((other) => other.state.name === spec.name);
  if (!existing) return null;
  const differences = specDifferences(spec, existing.state);
  if (differences.length === 0) return { container: existing, replace: false };
  if (request.replace) return { container: existing, replace: true };
  throw new UserError(
    `thin container ${spec.name} exists with another spec (${differences.join('; ')}): pass --replace to destroy and re-create it, or use thin-lxc update`,
  );
}

/** --dry-run (check mode): what create would do, changing nothing; a replace is planned and checked as a real one is. */
export function previewCreate(
  request: CreateRequest,
  settings: Settings,
  cwd: string,
): { changed: boolean; action: 'create' | 'replace' | 'unchanged'; state: ThinState; plan: CreatePlan | null; replacing: Replacing | null } {
  const spec = createSpec(request, settings, cwd);
  const others = listContainers(settings.root);
  const existing = existingOutcome(spec, request, others);
  if (existing && !existing.replace) return { changed: false, action: 'unchanged', state: existing.container.state, plan: null, replacing: null };
  if (existing) {
    const replacing = checkReplaceable(existing.container);
    const plan = planCreate(request, settings, cwd, spec, others, existing.container);
    return { changed: true, action: 'replace', state: plan.state, plan, replacing };
  }
  const plan = planCreate(request, settings, cwd, spec, others);
  return { changed: true, action: 'create', state: plan.state, plan, replacing: null };
}

/** The container a replace destroys, and whether it must be stopped first. */
export interface Replacing {
  container: ThinContainer;
  lxcState: string;
}

function describeDisk(state: ThinState, paths: ContainerPaths): string {
  if (state.disk === null) return 'none (the write layer can grow until its filesystem is full)';
  if (state.diskMode === 'quota') return `${state.disk} bytes, project quota ${state.diskProject} on ${state.diskMount} for wlayer and work`;
  return `${state.disk} bytes, a sparse ext4 image ${paths.diskImage} holding the write layer, mounted with -o loop at each start`;
}

/** What --dry-run --replace prints: what happens to the old container, then the new one's plan. */
export function describeReplace(replacing: Replacing, plan: CreatePlan): string {
  const { state, paths } = replacing.container;
  const stop = isActive(replacing.lxcState) ? `stop thin container ${state.name} (${replacing.lxcState.toLowerCase()}), destroy it` : `destroy thin container ${state.name}`;
  const head = `# thin-lxc create --dry-run --replace: nothing was written. Would ${stop} (id ${state.id}, ${paths.dir}), and create it anew:`;
  return [head, describePlan(plan).replace(/^# thin-lxc create --dry-run: nothing was written\. /, '# ')].join('\n');
}

function isActive(lxcState: string): boolean {
  return lxcState !== 'STOPPED' && lxcState !== 'UNKNOWN';
}

/**
 * What stops a replace before anything is touched: thin containers stacked on the old one, and an ephemeral one
 * that runs (its stop destroys it, by its own post-stop hook, which needs the create lock this replace holds).
 */
function checkReplaceable(old: ThinContainer, lxc = lxcState(old.state.name, old.state.lxcpath)): Replacing {
  const { state, paths } = old;
  const dependents = dependentNames(paths.dir, state);
  if (dependents.length > 0) {
    throw new UserError(`${state.name} is the base of thin containers ${dependents.join(', ')}: destroy them first, or choose another name`);
  }
  if (state.ephemeral && isActive(lxc)) {
    throw new UserError(`${state.name} is an ephemeral container that is ${lxc.toLowerCase()}: stop it (lxc-stop -n ${state.name}, which destroys it), then create it again`);
  }
  return { container: old, lxcState: lxc };
}

/**
 * Plans and applies under a host-wide lock, so creates running at the same time never get the same address;
 * the root is listed once there, for the comparison with a container of the same name and for the plan.
 */
export async function createContainer(request: CreateRequest, settings: Settings, cwd: string): Promise<CreateOutcome> {
  const spec = createSpec(request, settings, cwd);
  // LXC's lock on the base, which addDependent needs, is taken with 'create' by the same process, one process fewer:
  // create 147 -> 134 ms (-6%, cpu -8%; 21 pairs, Debian base, a nearly empty root, a loaded 2-core host, node -e 0 55 ms).
  let housekeeping: string[] = [];
  const result = await withLock('create', async (): Promise<CreateOutcome | { replace: ThinContainer }> => {
    housekeeping = sweepLeftovers(settings.root);
    // The root is listed once, its cache saved from that listing and the new container (refreshStateCache lists it
    // again): in a root of 1,000 containers 232 -> 184 ms (-18%, 15 pairs, the loaded host above).
    const listed = listContainersToAdd(settings.root);
    const others = listed.containers;
    const existing = existingOutcome(spec, request, others);
    if (existing?.replace) return { replace: existing.container };
    if (existing) return { action: 'unchanged', changed: false, state: existing.container.state };
    const plan = planCreate(request, settings, cwd, spec, others);
    if (plan.claim) await claimAddress(plan.claim.bridge, plan.claim.address, (mac) => containersWithMac(settings.lxcpath, mac));
    applyCreate(plan, settings);
    listed.saveCache([plan.state.id]);
    plan.warnings.push(...housekeeping);
    return { action: 'created', changed: true, state: plan.state, plan };
  }, 20_000, '', lxcLockAlongside(spec.base));
  if (!('replace' in result)) return result;
  // The old container's lock comes before 'create' (the lock order), so the first look above let go of 'create'.
  const { state } = result.replace;
  const replace = () => withContainerLock(result.replace.paths.dir, `replace ${spec.name}`, () => withLock('create', () => replaceContainer(request, settings, cwd, spec, result.replace)));
  const outcome = await replace();
  if (outcome !== 'stop first') return withWarnings(outcome, housekeeping);
  // lxc-stop returns only once LXC has run the container's post-stop hooks, which take its lock: it is stopped
  // holding no lock, now that the new spec checked out whole, and everything is checked again after.
  lxcStopNow(state.name, state.lxcpath);
  const again = await replace();
  if (again === 'stop first') throw new UserError(`${state.name} was started again while create --replace stopped it: stop it with lxc-stop -n ${state.name}, then create again`);
  return withWarnings(again, housekeeping);
}

/** A create's outcome with the warnings of its housekeeping too, when it made something (else the next create says them). */
function withWarnings(outcome: CreateOutcome, warnings: readonly string[]): CreateOutcome {
  if (outcome.changed) outcome.plan.warnings.push(...warnings);
  return outcome;
}

/**
 * The new container is planned and checked whole (base, template, addresses, ports, kernel, installation) with the
 * old one's own name, address, MAC, ports and veth counting as free; only then is the old one destroyed, and the
 * new one made. If it runs, 'stop first': the caller stops it holding no lock and comes back (lxc-stop waits for
 * the post-stop hooks, which take the container's lock; a running ephemeral one, whose hook removes it, is refused).
 * Whether it runs is read from its monitor's socket: LXC's own answer waits for a start's hooks, which wait for
 * this lock.
 */
async function replaceContainer(request: CreateRequest, settings: Settings, cwd: string, spec: CreateSpec, seen: ThinContainer): Promise<CreateOutcome | 'stop first'> {
  const others = listContainers(settings.root);
  const existing = existingOutcome(spec, request, others);
  if (!existing || existing.container.paths.dir !== seen.paths.dir || existing.container.state.created !== seen.state.created) {
    throw new UserError(`thin container ${spec.name} changed while this create waited for it: run the same create again`);
  }
  if (!existing.replace) return { action: 'unchanged', changed: false, state: existing.container.state };
  const old = checkReplaceable(existing.container, isRunning(seen.state.lxcpath, seen.state.name) ? 'RUNNING' : 'STOPPED');
  const plan = planCreate(request, settings, cwd, spec, others, old.container);
  const { state } = old.container;
  // The old container's own address is claimed once it is gone: until then it answers for it itself.
  if (plan.claim && plan.claim.address !== state.ip) await claimAddress(plan.claim.bridge, plan.claim.address, (mac) => containersWithMac(settings.lxcpath, mac));
  if (isActive(old.lxcState)) return 'stop first';
  teardown(old.container.paths.dir, { expectedName: state.name, unregister: true });
  if (plan.claim && plan.claim.address === state.ip) await claimAddress(plan.claim.bridge, plan.claim.address, (mac) => containersWithMac(settings.lxcpath, mac));
  applyCreate(plan, settings);
  refreshStateCache(settings.root);
  return { action: 'replaced', changed: true, state: plan.state, plan };
}

export function planCreate(
  request: CreateRequest,
  settings: Settings,
  cwd: string,
  spec = createSpec(request, settings, cwd),
  everyone = listContainers(settings.root),
  /** The container a replace destroys: its name, id, address, MAC, ports and veth are free for the new one. */
  replacing?: ThinContainer,
): CreatePlan {
  const { name, fs } = spec;
  const others = replacing ? everyone.filter((other) => other.paths.dir !== replacing.paths.dir) : everyone;
  const id = spec.id ?? name;
  const requestedIp = spec.ip;
  const publishes = spec.publish.map(parsePublish);
  const publish = spec.publish;
  const planned = planMounts(spec.mounts, cwd);
  const mounts = planned.mounts.map(formatMount);

  const paths = containerPaths(settings.root, id);
  const sameName = others.find((other) => other.state.name === name);
  if (sameName) {
    throw new UserError(`name ${quote(name)} is taken by thin container ${sameName.state.id}: choose another name`);
  }
  if (existsSync(paths.dir) && paths.dir !== replacing?.paths.dir) {
    throw new UserError(`id ${quote(id)} is taken (${paths.dir} exists): choose another --id, or thin-lxc destroy ${id}`);
  }
  if (lxcContainerExists(settings.lxcpath, name) && !(replacing?.state.name === name && replacing.state.lxcpath === settings.lxcpath)) {
    throw new UserError(
      `name ${quote(name)} is already used by an LXC container (${registrationDir(settings.lxcpath, name)}): choose another name`,
    );
  }

  const base = resolveBase(request.base, settings.lxcpath, cwd);
  if (fs === 'aufs' && base.layers.length + (spec.tmpfs === null ? 0 : 1) > 1) {
    throw new UserError(`base ${quote(request.base)} is itself a union of layers${spec.tmpfs === null ? '' : ', or --tmpfs adds one,'} which AuFS cannot stack on: use --fs overlay`);
  }
  requireKernelSupport(fs);
  checkInstallation();
  const map = spec.idmap === null ? null : parseIdMap(spec.idmap);
  const shifted = storedLayers(base, request.base, spec.idmap);
  if (map) requireUnprivileged(map, settings.root, base.layers.filter((layer) => !shifted.includes(layer)));

  const bridge = networkOf(base.entries, request.base, requestedIp !== null || spec.ip6 !== null || publishes.length > 0);
  const ip = bridge ? chooseAddress(name, requestedIp, bridge, others, () => runningAddresses(settings.lxcpath), replacing?.state) : null;
  const takenMacs = new Set(others.flatMap((other) => Object.values(other.state.hwaddrs)));
  const hwaddrs = assignMacs(networkIndexes(base.entries), takenMacs);
  const ip6 = bridge && ip && hwaddrs['0'] ? chooseAddress6(spec.ip6, hwaddrs['0'], bridge, others) : null;
  const subnet6 = ip6 && bridge?.ipv6 ? formatSubnet6(bridge.ipv6.subnet) : null;
  const v6Only = publishes.find((publish) => publish.family === 6);
  if (v6Only && !ip6) {
    throw new UserError(`publish ${formatPublish(v6Only)} is on IPv6, which ${bridge?.name ?? 'the bridge'} has none of: give it IPv6 with thin-lxc setup --ipv6, or publish on both families (leave the address out)`);
  }
  // Host ports are the host's: thin containers of other roots registered in the lxcpath publish on them too.
  const publishers = publishes.length === 0 ? [] : knownContainers(settings.root, settings.lxcpath).filter((other) => other.paths.dir !== replacing?.paths.dir);
  checkPublishConflicts(publishes, publishers.map((other) => other.state));
  const clash = request.force ? undefined : portClashes(publishes)[0];
  if (clash) {
    throw new UserError(`${describeClash(clash)}: publishing it would take it away from them; choose another host port, or pass --force to publish it anyway`);
  }
  const veth = bridge ? chooseVeth(paths.dir, others.map((other) => other.state)) : null;
  const version = thinLxcVersion();
  const view: ConfigView = {
    version,
    id,
    name,
    baseName: base.name,
    baseConfig: base.configPath,
    baseLines: baseConfigLines(base),
    fs,
    rootfs: paths.rootfs,
    wlayer: paths.wlayer,
    hwaddrs: Object.entries(hwaddrs).map(([index, address]) => ({ index: Number(index), address })),
    publish: publish.join(', '),
    mounts: planned.entries,
    autostart: spec.autostart,
    limits: limitLines(spec, hostCgroupVersion()),
    tmpfs: spec.tmpfs,
    ephemeral: spec.ephemeral,
    ipv4:
      ip && bridge && veth
        ? {
            index: 0,
            address: ip,
            prefix: bridge.subnet.prefix,
            broadcast: toAddress(broadcastOf(bridge.subnet)),
            gateway: bridge.gateway,
            veth,
          }
        : null,
    ipv6: ip6 && bridge?.ipv6 ? { index: 0, address: ip6, prefix: bridge.ipv6.subnet.prefix, gateway: bridge.ipv6.gateway } : null,
    // Only a container that publishes ports pays for the two host-side hooks.
    idmap: map,
    hooks: hookView(thinHooks(paths.dir, hookNeeds({ publish, ephemeral: spec.ephemeral, ip6, subnet6, hwaddrs, idmap: spec.idmap }))),
  };
  const config =
    request.template === undefined ? renderDefaultConfig(view) : renderConfig(readTemplate(resolve(cwd, request.template)), view);
  if (spec.disk !== null) requireReachable(settings.root, Number(spec.disk), request.disk ?? spec.disk);
  const overcommit = spec.disk === null ? null : overcommitOf(settings.root, name, request.disk ?? spec.disk, Number(spec.disk), null, imagesOf(others, paths.dir));
  const disk = spec.disk === null ? null : planDisk(settings.root, paths.dir, others);
  const state: ThinState = {
    id,
    name,
    base: base.dir,
    baseName: base.name,
    fs,
    layers: base.layers,
    hwaddrs,
    ip,
    bridge: bridge?.name ?? null,
    subnet: bridge ? formatSubnet(bridge.subnet) : null,
    ip6,
    subnet6,
    veth,
    publish,
    mounts,
    lxcpath: settings.lxcpath,
    created: new Date().toISOString(),
    autostart: spec.autostart,
    ephemeral: spec.ephemeral,
    tmpfs: spec.tmpfs,
    memory: spec.memory,
    cpus: spec.cpus,
    template: spec.template,
    disk: spec.disk,
    diskMode: disk?.mode ?? null,
    diskProject: disk?.mode === 'quota' ? String(disk.project) : null,
    diskMount: disk?.mode === 'quota' ? disk.mountPoint : null,
    idmap: spec.idmap,
    shifted,
  };
  return {
    state,
    paths,
    config,
    layerFiles: identityFiles(base.layers, name),
    warnings: [...baseWarnings(base, settings.lxcpath), ...(overcommit === null ? [] : [overcommit]), ...rootOpening(settings.root, spec.idmap)],
    claim: bridge && ip && requestedIp ? { bridge, address: ip } : null,
  };
}

/**
}

/**
 * How --disk is kept in this root: a project quota where its filesystem enforces them, with an id no one uses on
 * that filesystem (repquota) and no other thin container recorded; an image elsewhere.
 */
/** The other containers' disk images (not `dir`'s, which a replace makes anew), with their limits. */
export function imagesOf(containers: readonly ThinContainer[], dir: string): { image: string; limitBytes: number }[] {
  return containers.filter((other) => other.state.diskMode === 'image' && other.paths.dir !== dir).map((other) => ({ image: other.paths.diskImage, limitBytes: Number(other.state.disk) }));
}

function planDisk(root: string, dir: string, others: readonly ThinContainer[]): { mode: 'quota'; mountPoint: string; project: number } | { mode: 'image' } {
  const mechanism = readDiskMechanism(root, readFileSync('/proc/self/mountinfo', 'utf8'));
  if (mechanism.mode === 'image') return mechanism;
  const taken = new Set([
    ...projectsInUse(mechanism.mountPoint).keys(),
    ...others.filter((other) => other.state.diskMode === 'quota').map((other) => Number(other.state.diskProject)),
  ]);
  return { ...mechanism, project: chooseProject(dir, taken) };
}

/**
 * The base's layers stored in the container's map, used as they are: those of an unprivileged base (thin or LXC)
 * with the same map. Its files are owned by its map's ids: shown to another map, or to a privileged container,
 * they would belong to nobody inside (or to ids of the host), so that is refused.
 */
function storedLayers(base: Base, spec: string, idmap: string | null): string[] {
  const stored = base.stored;
  if (!stored) return [];
  if (idmap === stored.idmap) return stored.layers;
  const what = stored.kind === 'thin' ? 'an unprivileged thin container' : 'an unprivileged LXC container';
  const fix = `create it with --unprivileged --idmap ${stored.idmap} as ${quote(spec)} has${stored.kind === 'thin' ? `, or commit ${quote(spec)} (thin-lxc commit) and stack on that` : ''}`;
  if (idmap === null) throw new UserError(`base ${quote(spec)} is ${what} (map ${stored.idmap}), under which a privileged one cannot stack: ${fix}`);
  throw new UserError(`base ${quote(spec)} is ${what} with another map (${stored.idmap}, not ${idmap}): ${fix}`);
}

/** What an unprivileged container needs of the host, checked at create: mapped ids LXC may use, and idmappable layers. */
function requireUnprivileged(map: IdMap, root: string, layers: readonly string[]): void {
  requireRootRanges(map);
  // The root itself is made searchable by create (prepareRoot); what is above it is the administrator's.
  const closed = pathAndParents(dirname(root)).find((dir) => existsSync(dir) && (statSync(dir).mode & 0o001) === 0);
  if (closed) {
    throw new UserError(
      `${closed} is not searchable by others, and LXC opens an unprivileged container's rootfs below it as the container's root (uid ${map.host} on the host): chmod o+x ${closed}, or choose another --root`,
    );
  }
  const problem = idmapProblem(shiftUp(map), layers);
  if (problem) {
    throw new UserError(
      `the kernel cannot show the base's layers to an unprivileged container through an idmapped mount (${problem}): ` +
        'that needs Linux 5.19 or later with the base on ext4, xfs or btrfs; or create it without --unprivileged',
    );
  }
}

/** The host-side veth, which also names the container's iptables chains: unique among thin containers and host interfaces. */
function chooseVeth(dir: string, others: readonly ThinState[]): string {
  const taken = new Set(others.map((other) => other.veth));
  for (let salt = 0; salt < 16; salt++) {
    const veth = vethName(dir, salt);
    if (!taken.has(veth) && !existsSync(`/sys/class/net/${veth}`)) return veth;
  }
  throw new UserError(`no free veth name for ${dir}: remove stale tlx* interfaces (ip link del NAME)`);
}

/** A base that runs changes the files under its thin containers while they use them. */
function baseWarnings(base: Base, lxcpath: string): string[] {
  if (dirname(base.dir) !== lxcpath) return [];
  return isRunning(lxcpath, basename(base.dir))
    ? [`base ${base.name} is running: its thin containers see its files change under them; stop it with lxc-stop -n ${basename(base.dir)}`]
    : [];
}

function parseFs(value: string | undefined): UnionFs {
  const fs = value ?? 'overlay';
  if (!(UNION_FILESYSTEMS as readonly string[]).includes(fs)) {
    throw new UserError(`fs ${quote(fs)} is not supported: use overlay (the default) or aufs`);
  }
  return fs as UnionFs;
}

/**
 * Builds the container in a dot directory inside the root and renames it into place, then registers
 * it with LXC; whatever fails, nothing half-made is left behind.
 */
function applyCreate(plan: CreatePlan, settings: Settings): void {
  const { state, paths } = plan;
  const staging = join(settings.root, inProgressName('creating', state.id));
  let registered = false;
  let listed = false;
  let reserved = false;
  let limited = false;
  // Where it writes now, for a full disk's message: a write's own error names no path.
  let writing = { dir: settings.root, fix: 'or create it with --root on another filesystem' };
  try {
    prepareRoot(settings.root, plan.state.idmap !== null);
    mkdirSync(join(staging, 'image/rootfs'), { recursive: true, mode: 0o755 });
    // Closed before anything is written in it, and renamed into place closed. Root's alone until then, also for an
    // unprivileged container: the write layer is the map root's while root writes and chowns in it, and a symlink the
    // map's ids on the host put there meanwhile would be followed. The map's group only needs it to start.
    closeDirectory(staging, null);
    writeFileSync(join(staging, 'image', 'config'), plan.config, { mode: 0o644 });
    writeFileSync(join(staging, 'thin-lxc.ini'), serializeState(state), { mode: 0o644 });
    // An unprivileged container's write layer is stored in its map: what its root makes is owned by HOSTID on the host.
    const shift = state.idmap === null ? null : { host: parseIdMap(state.idmap).host, shifted: state.shifted };
    if (state.diskMode === 'image') {
      // The image is made whole from a staged upper and work: create mounts nothing.
      const source = join(staging, 'disk-source');
      const layer = imageLayer(source);
      for (const dir of [layer.upper, layer.work]) mkdirSync(dir, { recursive: true, mode: 0o755 });
      if (shift) chownSync(layer.upper, shift.host, shift.host);
      for (const file of plan.layerFiles) writeLayerFile(layer.upper, state.layers, file, shift);
      makeImage(join(staging, basename(paths.diskImage)), Number(state.disk), source);
      removeStaged(source);
    } else {
      for (const dir of ['wlayer', 'work']) mkdirSync(join(staging, dir), { mode: 0o755 });
      if (shift) chownSync(join(staging, 'wlayer'), shift.host, shift.host);
      if (state.diskMode === 'quota') {
        // Before anything is written in them, which then counts against the limit: what is made inside inherits the project.
        limited = true;
        limitProject([join(staging, 'wlayer'), join(staging, 'work')], state.diskMount!, Number(state.diskProject), Number(state.disk));
      }
      for (const file of plan.layerFiles) writeLayerFile(join(staging, 'wlayer'), state.layers, file, shift);
    }
    writing = { dir: settings.lxcpath, fix: 'or use --lxcpath on another filesystem' };
    try {
      register(settings.lxcpath, state.name, state.id, paths.config);
    } catch (error) {
      throw alreadyExists(error)
        ? new UserError(`name ${quote(state.name)} was taken by another LXC container while creating: choose another name`)
        : error;
    }
    registered = true;
    // Listed in the base's lxc_snapshots, as LXC lists its own overlay snapshots: lxc-destroy of the base refuses.
    writing = { dir: state.base, fix: 'then create it again' };
    addDependent(state.base, { lxcpath: settings.lxcpath, name: state.name });
    listed = true;
    // The entry is written: LXC's tools on the base (lxc-info, lxc-start) need not wait for the rest of the create,
    // and a rollback's removeDependent takes the lock again itself.
    releaseLxcLockAlongside(state.base);
    const mac = state.hwaddrs['0'];
    if (state.ip && mac) {
      writing = { dir: HOSTS_DIR, fix: 'then create it again' };
      reserve(state.name, mac, state.ip, state.ip6);
      reserved = true;
    }
    closeDirectory(staging, state.idmap);
    // The rename is the moment the container exists: a create killed before it leaves a dot directory
    // that list ignores and the next command sweeps away, with the registration and reservation above.
    try {
      renameSync(staging, paths.dir);
    } catch (error) {
      throw alreadyExists(error) ? new UserError(`id ${quote(state.id)} was taken while creating: choose another --id`) : error;
    }
  } catch (error) {
    if (limited) clearProject(state.diskMount!, Number(state.diskProject));
    if (reserved) release(state.name);
    if (listed) removeDependent(state.base, { lxcpath: settings.lxcpath, name: state.name });
    if (registered) unregister(settings.lxcpath, state.name, paths.config);
    removeTreeOnDevice(staging, `the half-made thin container ${state.name}`);
    if (isNoSpace(error)) throw noSpaceLeft(writing.dir, `thin container ${state.name} was not created`, writing.fix, error);
    throw error;
  }
}

/** What prepareRoot will change of a root the administrator made: said, as setup says what it edits. */
function rootOpening(root: string, idmap: string | null): string[] {
  if (idmap === null || !existsSync(root) || (statSync(root).mode & 0o001) !== 0) return [];
  return [`made ${root} searchable by others (chmod o+x, search without listing): LXC opens an unprivileged container's rootfs below it as uid ${parseIdMap(idmap).host}`];
}

function prepareRoot(root: string, unprivileged: boolean): void {
  mkdirSync(root, { recursive: true, mode: 0o755 });
  // Hooks run as root from configs in this directory: anyone who could write here could run code as root.
  const mode = statSync(root).mode;
  if ((mode & 0o002) !== 0) {
    throw new UserError(`root ${root} is writable by everyone, which would let any user run code as root: chmod o-w ${root}`);
  }
  // LXC opens an unprivileged container's rootfs as the container's root, an unprivileged uid on the host, which
  // must pass through the root to reach it: search (o+x), not listing, is all it needs.
  if (unprivileged && (mode & 0o001) === 0) chmodSync(root, (mode & 0o7777) | 0o001);
}

function alreadyExists(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EEXIST' || code === 'ENOTEMPTY';
}
