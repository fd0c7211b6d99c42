// thin-lxc doctor: checks what thin-lxc needs from the host and, for each problem, prints the command that fixes it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { isClosed } from '../container/access.js';
import { knownContainers } from '../container/containers.js';
import { type ThinContainer } from '../state/paths.js';
import { iptablesSave, iptablesVersion, lxcVersion } from '../core/commands.js';
import { type Family, parseIPv6, parsePublish } from '../core/validate.js';
import type { ThinState } from '../state/state.js';
import { forwardTarget, unguardedLocalnet } from '../forward/apply.js';
import { describeClash, portClashes } from '../forward/ports.js';
import { CHAINS, forwardingInPlace, readSaved, type SavedState, targetFamilies } from '../forward/rules.js';
import { defaultBridge, parseLxcConfig } from '../lxc/config.js';
import { checkInstallation, HOOK_NAMES, hookFile, hookLineFiles, thinHookOf } from '../lxc/install.js';
import { lxcStatusLookup } from '../lxc/lxcpath.js';
import { isListed, snapshotsFile } from '../lxc/snapshots.js';
import { requireRootRanges } from '../lxc/subids.js';
import { bridgeIPv6, readBridge } from '../network/bridge.js';
import { dnsmasqPid, dnsmasqReadsReservations, HOSTS_DIR, NAMES_DIR } from '../network/dhcp.js';
import { formatSubnet } from '../network/ipv4.js';
import { contains6, formatSubnet6 } from '../network/ipv6.js';
import { parseIdMap } from '../union/idmap.js';
import { readKernelSupport } from '../union/mount.js';
import { baseIsGone, listViews } from './list.js';
import type { Settings } from './settings.js';

export interface Check {
  what: string;
  ok: boolean;
  /** What was found, or for a problem: what is wrong and the command that fixes it. */
  detail: string;
}

function check(what: string, probe: () => string): Check {
  try {
    return { what, ok: true, detail: probe() };
  } catch (error) {
    return { what, ok: false, detail: (error as Error).message };
  }
}

function fail(message: string): never {
  throw new Error(message);
}

export function doctor(settings: Settings): Check[] {
  let containers: ThinContainer[] | undefined;
  const known = () => (containers ??= knownContainers(settings.root, settings.lxcpath));
  const defaultBridgeName = defaultBridge();
  return [
    check('root', () => (process.getuid?.() === 0 ? 'running as root' : fail('not root: run thin-lxc with sudo'))),
    check('LXC', () => {
      const version = lxcVersion() ?? fail('LXC is not installed: apt-get install lxc');
      return `LXC ${version}`;
    }),
    check('union filesystem', () => {
      const overlay = readKernelSupport('overlay');
      if (overlay === 'absent') fail('overlayfs is neither loaded nor among this kernel\'s modules: use a kernel with overlayfs (3.18 or later)');
      const how = { loaded: '', module: ' (a module not loaded yet: the first start loads it)' }[overlay];
      const aufs = { loaded: ' and aufs', module: ' and aufs (a module)', absent: '; aufs: not in this kernel' }[readKernelSupport('aufs')];
      return `overlay${how}${aufs}`;
    }),
    check('bridge', () => {
      try {
        const bridge = readBridge(defaultBridgeName);
        const ipv6 = bridge.ipv6 ? `IPv6 ${bridge.ipv6.gateway}, ${formatSubnet6(bridge.ipv6.subnet)}` : 'no IPv6 (thin-lxc setup --ipv6 gives it one)';
        return `${bridge.name} ${bridge.gateway}, subnet ${formatSubnet(bridge.subnet)}; ${ipv6}`;
      } catch (error) {
        return fail(`${(error as Error).message}`);
      }
    }),
    check('ip_forward', () =>
      readIfPresent('/proc/sys/net/ipv4/ip_forward').trim() === '1'
        ? 'on'
        : fail('net.ipv4.ip_forward is 0, so published ports cannot be forwarded: sysctl -w net.ipv4.ip_forward=1'),
    ),
    check('iptables', () => {
      const iptables = iptablesVersion() ?? fail('iptables is not installed: apt-get install iptables');
      if (!iptables.natReadable) fail(`${iptables.version} cannot read the nat table: modprobe iptable_nat, or check the kernel's netfilter`);
      return iptables.version;
    }),
    check("lxc-net's dnsmasq", () => {
      if (dnsmasqPid() === null) fail('dnsmasq for the bridge is not running: systemctl restart lxc-net (or USE_LXC_BRIDGE=true /usr/libexec/lxc/lxc-net start)');
      if (!dnsmasqReadsReservations()) fail(`it does not read thin-lxc's address reservations (${HOSTS_DIR}) and names (${NAMES_DIR}): thin-lxc setup`);
      return `running, reads reservations from ${HOSTS_DIR} and names from ${NAMES_DIR}`;
    }),
    check('unprivileged ids', () => {
      // Only the maps in use (and the settings' default) are checked: a host with no unprivileged container needs none.
      const maps = [...new Set([...known().map(({ state }) => state.idmap), settings.unprivileged ?? null].filter((map) => map !== null))];
      if (maps.length === 0) return 'no unprivileged thin container';
      for (const map of maps) requireRootRanges(parseIdMap(map));
      return `maps ${maps.join(', ')} are within root's ranges (or newuidmap is not installed)`;
    }),
    check('root directory', () => {
      if (!existsSync(settings.root)) return `${settings.root} (made at the first create)`;
      if ((statSync(settings.root).mode & 0o002) !== 0) fail(`${settings.root} is writable by everyone: chmod o-w ${settings.root}`);
      return settings.root;
    }),
    check('bases in use', () => {
      const running = [...new Set(listViews(settings).filter((v) => v.baseState === 'RUNNING' || v.baseState === 'FROZEN').map((v) => v.base))];
      if (running.length > 0) fail(`${running.join(', ')} running while thin containers use them: lxc-stop -n ${running[0]}`);
      return 'none running';
    }),
    check('hooks', () => {
      const missing = HOOK_NAMES.map(hookFile).filter((file) => !existsSync(file));
      if (missing.length > 0) fail(`missing ${missing.join(', ')}: npm run build`);
      checkInstallation();
      return `built, owned by root, run by ${process.execPath}`;
    }),
    check('bases', () => {
      const problems = known().flatMap(({ state }) => {
        if (baseIsGone(state)) return [`${state.name}: its base ${state.base} is gone, so it cannot start: restore the base, or thin-lxc destroy ${state.name}`];
        if (isListed(state.base, { lxcpath: state.lxcpath, name: state.name })) return [];
        const destroy = dirname(state.base) === settings.lxcpath ? `lxc-destroy -n ${basename(state.base)}` : `lxc-destroy -P ${dirname(state.base)} -n ${basename(state.base)}`;
        return [`${state.name}: not in ${snapshotsFile(state.base)}, so ${destroy} would not refuse (made before thin-lxc registered there): thin-lxc refresh`];
      });
      if (problems.length > 0) fail(problems.join('; '));
      return `${known().length} thin container(s) listed in their bases' lxc_snapshots`;
    }),
    check("containers' hooks", () => {
      const problems = known().flatMap(({ state, paths }) => {
        const problem = hookProblem(readIfPresent(paths.config));
        return problem ? [`${state.name}: ${problem}`] : [];
      });
      if (problems.length > 0) fail(`${problems.join('; ')}: thin-lxc refresh`);
      return `${known().length} thin container(s) use this installation`;
    }),
    check("containers' directories", () => {
      const open = known().filter(({ state, paths }) => existsSync(paths.dir) && !isClosed(paths.dir, state.idmap)).map(({ state }) => state.name);
      if (open.length > 0) fail(`${open.join(', ')}: open to other local users, who could run what root inside left in the write layer (as thin-lxc 0.2 made them): thin-lxc refresh`);
      return `${known().length} thin container(s) closed to other local users`;
    }),
    check('published ports', () => {
      const clashes = known().flatMap(({ state }) => portClashes(state.publish.map(parsePublish)).map((clash) => `${state.name}: ${describeClash(clash)}`));
      if (clashes.length > 0) fail(`${clashes.join('; ')}: stop that service, or re-create the container with another host port`);
      return 'no host process listens on a published port';
    }),
    check('IPv6 addresses', () => {
      // setup --ipv6 with another prefix moves the bridge's network; the containers made before keep the old one.
      const bridges = new Map<string, ReturnType<typeof bridgeIPv6>>();
      const networkOf = (bridge: string) => (bridges.has(bridge) ? bridges.get(bridge)! : bridges.set(bridge, bridgeIPv6(bridge)).get(bridge)!);
      const outside = known().flatMap(({ state }) => {
        const network = state.ip6 && state.bridge ? networkOf(state.bridge) : null;
        const value = state.ip6 ? parseIPv6(state.ip6) : null;
        return network && value !== null && !contains6(network.subnet, value)
          ? [`${state.name} (${state.ip6}) outside ${state.bridge}'s IPv6 network ${formatSubnet6(network.subnet)}`]
          : [];
      });
      if (outside.length > 0) fail(`${outside.join('; ')} (setup --ipv6 changed the prefix since): thin-lxc refresh re-addresses them`);
      return 'every thin container\'s IPv6 address is in its bridge\'s network';
    }),
    check('forwarding', () => {
      const statusOf = lxcStatusLookup();
      const running = known().filter(({ state }) => forwardTarget(state) && statusOf(state.lxcpath, state.name)?.state === 'RUNNING');
      if (running.length === 0) return 'no running thin container publishes ports';
      const saved = new Map<Family, SavedState>();
      const savedOf = (family: Family) => saved.get(family) ?? saved.set(family, readSaved(iptablesSave(family))).get(family)!;
      const familiesOf = (state: ThinState) =>
        targetFamilies(forwardTarget(state)!).filter((family) => family === 4 || (state.bridge !== null && bridgeIPv6(state.bridge) !== null));
      const broken = running
        .filter(({ state }) => familiesOf(state).some((family) => !forwardingInPlace(savedOf(family), forwardTarget(state)!.tag, family)))
        .map(({ state }) => state.name);
      if (broken.length > 0) fail(`${broken.join(', ')}: forwarding missing or incomplete (was the firewall reloaded?): thin-lxc reload`);
      return `in place for ${running.length} running thin container(s)`;
    }),
    check('localhost guard', () => {
      const bridges = [...new Set([defaultBridgeName, ...known().flatMap(({ state }) => (state.bridge ? [state.bridge] : []))])];
      const saved = readSaved(iptablesSave(4));
      const open = bridges.filter((bridge) => unguardedLocalnet(bridge, saved));
      if (open.length > 0) {
        fail(
          `route_localnet is on for ${open.join(', ')} but the raw table has no ${CHAINS.guard}, so containers can reach the host's 127.0.0.1 services ` +
            '(was the firewall reloaded?): thin-lxc reload',
        );
      }
      return `route_localnet only with ${CHAINS.guard} in place`;
    }),
  ];
}

/**
 * What keeps LXC from running a thin container's hooks as this installation would: a node binary or hook
 * file that is gone (node upgraded or moved, thin-lxc reinstalled elsewhere), another installation's hooks,
 * or a config from before the clone hook or the post-stop hook every container has since 0.3. null when none.
 */
function hookProblem(config: string): string | null {
  const hooks = parseLxcConfig(config).filter((entry) => entry.key.startsWith('lxc.hook.') && thinHookOf(entry.value) !== null);
  for (const { value } of hooks) {
    const files = hookLineFiles(value);
    if (!files) return `hook line "${value}" is not one thin-lxc writes`;
    if (!existsSync(files.node)) return `its hooks run node ${files.node}, which is missing`;
    if (!existsSync(files.hook)) return `its hooks are in ${dirname(files.hook)}, which is missing`;
    if (files.node !== process.execPath || dirname(files.hook) !== dirname(hookFile('mount'))) {
      return `its hooks are another installation's (${files.node} ${dirname(files.hook)})`;
    }
  }
  if (!hooks.some(({ value }) => thinHookOf(value) === 'clone')) return 'it was made by an older thin-lxc (no clone hook, so lxc-copy would make a broken copy)';
  if (!hooks.some(({ value }) => thinHookOf(value) === 'ports-down')) {
    return 'it was made by thin-lxc 0.2 (no post-stop hook, so ports thin-lxc update gives it while it runs would outlive it)';
  }
  return null;
}

export function formatChecks(checks: readonly Check[]): string {
  return checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'}  ${c.what.padEnd(18)} ${c.detail}`).join('\n');
}

function readIfPresent(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
