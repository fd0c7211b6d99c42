// thin-lxc setup: prepares the host once (idempotent): lxc-net's dnsmasq reads thin-lxc's address reservations
// and names; root has subordinate ids for unprivileged containers; with --ipv6, lxc-net's bridge gets IPv6;
// bash completes thin-lxc's commands, options and container names.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../core/errors.js';
import { writeFileAtomic } from '../core/files.js';
import { missingPackages } from '../core/exec.js';
import { quote } from '../core/validate.js';
import { installationPath } from '../lxc/install.js';
import { ensureRootRanges } from '../lxc/subids.js';
import { DEFAULT_IDMAP, formatIdMap } from '../union/idmap.js';
import { bridgeIPv6 } from '../network/bridge.js';
import { dnsmasqPid, dnsmasqReadsReservations, HOSTS_DIR, NAMES_DIR } from '../network/dhcp.js';
import { formatSubnet6, parseSubnet6, type Subnet6 } from '../network/ipv6.js';
import { configureDnsmasq, configureIPv6, LXC_NET_DEFAULTS, lxcNetBridge, raParamLine, restartLxcNet } from '../network/lxc-net.js';

/** What thin-lxc and its hooks run, for a host where LXC was installed by hand or only partly. */
const NEEDED = ['lxc-start', 'lxc-info', 'lxc-ls', 'dnsmasq', 'iptables', 'iptables-save', 'iptables-restore', 'ip', 'mount', 'flock'];

/** `ipv6`: true for IPv6 on the bridge with a ULA prefix of its own (or the one configured), or the /64 to use. */
export function setup(options: { ipv6?: string | boolean | undefined } = {}): string {
  const missing = missingPackages(NEEDED);
  if (missing.length > 0) throw new UserError(`thin-lxc needs packages this host lacks: apt-get install ${missing.join(' ')}`);
  // Read (or refused) before anything is written: a refusal after lxc-net's files changed would leave lxc-net
  // unrestarted, and a rerun would find nothing changed and never restart it.
  const completion = completionScript();
  // Before lxc-net: a failure there must not leave unprivileged containers without their ids.
  const subids = ensureRootRanges().map(({ file, map }) => {
    const added = `added root:${formatIdMap(map)} to ${file}: unprivileged containers' ids (LXC maps them with newuidmap, which allows root only its ranges there)`;
    if (map.host === DEFAULT_IDMAP.host) return added;
    return `${added}; ${formatIdMap(DEFAULT_IDMAP)} is another user's there, so --unprivileged maps to ${formatIdMap(map)} on this host`;
  });
  const requested = typeof options.ipv6 === 'string' ? ipv6Prefix(options.ipv6) : null;
  const previous = options.ipv6 ? bridgeIPv6(lxcNetBridge()) : null;
  const changed = configureDnsmasq(options.ipv6 ? [raParamLine(lxcNetBridge())] : []);
  const ipv6 = options.ipv6 ? configureIPv6(lxcNetBridge(), requested) : null;
  if (ipv6) changed.push(...ipv6.changed);
  const lines = [...subids, ...changed.map((file) => `updated ${file}`)];
  if (changed.length > 0 || (dnsmasqPid() !== null && !dnsmasqReadsReservations()) || dnsmasqPid() === null) {
    restartLxcNet();
    lines.push('restarted lxc-net');
  }
  if (installCompletion(completion)) lines.push(`installed bash completion as ${BASH_COMPLETION}: Tab completes thin-lxc's commands, options and containers in new shells`);
  lines.push(`lxc-net's dnsmasq reads static address reservations from ${HOSTS_DIR} and names from ${NAMES_DIR}: thin containers keep their addresses and are found by name.`);
  if (ipv6) {
    const now = bridgeIPv6(lxcNetBridge());
    if (!now) throw new UserError(`lxc-net restarted but ${lxcNetBridge()} has no IPv6 address: check LXC_IPV6_* in ${LXC_NET_DEFAULTS} and that IPv6 is enabled (sysctl net.ipv6.conf.all.disable_ipv6)`);
    lines.push(`${lxcNetBridge()} has IPv6 ${now.gateway} in ${formatSubnet6(now.subnet)}: thin containers made from now on get an IPv6 address, and their published ports answer on IPv6 too.`);
    if (previous && formatSubnet6(previous.subnet) !== formatSubnet6(now.subnet)) {
      lines.push(`Its IPv6 network was ${formatSubnet6(previous.subnet)}: thin containers made before have addresses there; thin-lxc refresh moves them into the new one (thin-lxc doctor names them).`);
    }
  }
  return lines.join('\n');
}

/** Where bash-completion looks for a command's completion, loading it at the first Tab. */
export const BASH_COMPLETION = '/usr/share/bash-completion/completions/thin-lxc';

/** This installation's completion script. */
function completionScript(): string {
  const source = installationPath('completion', 'thin-lxc.bash');
  const script = readTextIfPresent(source);
  if (script === undefined) throw new UserError(`${source} is missing from thin-lxc's installation: reinstall thin-lxc (npm install -g, or scripts/install.sh)`);
  return script;
}

/** Puts the completion script in place; false when it was there already. */
function installCompletion(script: string): boolean {
  if (readTextIfPresent(BASH_COMPLETION) === script) return false;
  mkdirSync(dirname(BASH_COMPLETION), { recursive: true });
  writeFileAtomic(BASH_COMPLETION, script, 0o644);
  return true;
}

function readTextIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The /64 to give the bridge: SLAAC, which lxc-net's router advertisements offer, needs exactly that. */
function ipv6Prefix(text: string): Subnet6 {
  const subnet = parseSubnet6(text.includes('/') ? text : `${text}/64`);
  if (!subnet || subnet.prefix !== 64) {
    throw new UserError(`--ipv6 ${quote(text)} is not an IPv6 /64 network: write it like fd42:7a3b:1c00::/64 (or leave it out for a ULA prefix of the host's own)`);
  }
  return subnet;
}
