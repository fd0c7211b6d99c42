// lxc-net, the service behind lxcbr0 and its dnsmasq: pointing that dnsmasq at thin-lxc's address reservations
// and names, and giving its bridge IPv6.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { restartLxcNetService } from '../core/commands.js';
import { UserError } from '../core/errors.js';
import { formatIPv6 } from '../core/validate.js';
import { bridgeIPv6 } from './bridge.js';
import { DNSMASQ_LINES, HOSTS_DIR, NAMES_DIR, dnsmasqReadsReservations, missingDnsmasqLines } from './dhcp.js';
import { formatSubnet6, parseSubnet6, randomUlaPrefix, type Subnet6 } from './ipv6.js';

export const LXC_NET_DEFAULTS = '/etc/default/lxc-net';
export const THIN_DNSMASQ_CONF = '/etc/thin-lxc/dnsmasq.conf';
const LXC_NET_SCRIPTS = ['/usr/libexec/lxc/lxc-net', '/usr/lib/x86_64-linux-gnu/lxc/lxc-net', '/usr/lib/lxc/lxc-net'];

/** The last uncommented `NAME=value` of a shell defaults file, unquoted. */
export function shellVariable(text: string, name: string): string | undefined {
  let value: string | undefined;
  for (const line of text.split('\n')) {
    const match = new RegExp(`^\\s*${name}=(.*)$`).exec(line);
    if (match) value = match[1]!.trim().replace(/^(["'])(.*)\1$/, '$2');
  }
  return value === '' ? undefined : value;
}

/**
 * Makes lxc-net's dnsmasq read HOSTS_DIR and NAMES_DIR, and take `extra` options (setup --ipv6's); says
 * which files it changed, if any.
 */
export function configureDnsmasq(extra: readonly string[] = []): string[] {
  const wanted = [...DNSMASQ_LINES, ...extra];
  mkdirSync(HOSTS_DIR, { recursive: true, mode: 0o755 });
  mkdirSync(NAMES_DIR, { recursive: true, mode: 0o755 });
  const defaults = existsSync(LXC_NET_DEFAULTS) ? readFileSync(LXC_NET_DEFAULTS, 'utf8') : '';
  const confFile = shellVariable(defaults, 'LXC_DHCP_CONFILE');
  if (confFile === undefined) {
    mkdirSync(dirname(THIN_DNSMASQ_CONF), { recursive: true });
    writeFileSync(THIN_DNSMASQ_CONF, `# lxc-net's dnsmasq reads thin-lxc's static address reservations and names from here (thin-lxc setup).\n${wanted.join('\n')}\n`);
    appendFileSync(LXC_NET_DEFAULTS, `\n# Added by thin-lxc setup: dnsmasq options for lxcbr0, with thin-lxc's address reservations.\nLXC_DHCP_CONFILE=${THIN_DNSMASQ_CONF}\n`);
    return [THIN_DNSMASQ_CONF, LXC_NET_DEFAULTS];
  }
  const missing = missingDnsmasqLines(confFile, wanted);
  if (missing.length === 0) return [];
  appendFileSync(confFile, `\n# Added by thin-lxc setup.\n${missing.join('\n')}\n`);
  return [confFile];
}

/** The bridge lxc-net makes: LXC_BRIDGE in its defaults, lxcbr0 unless they say otherwise. */
export function lxcNetBridge(): string {
  const defaults = existsSync(LXC_NET_DEFAULTS) ? readFileSync(LXC_NET_DEFAULTS, 'utf8') : '';
  return shellVariable(defaults, 'LXC_BRIDGE') ?? 'lxcbr0';
}

/**
 * Router advertisements every ~10 s instead of dnsmasq's ~10 min: a container whose init flushes eth0
 * (busybox's udhcpc script does) gets its IPv6 address back from SLAAC within ~20 s (measured: 0-20 s over ten
 * starts; 4 s here made no difference) instead of minutes (see network/ipv6.ts, slaacAddress).
 */
export function raParamLine(bridge: string): string {
  return `ra-param=${bridge},10`;
}

/**
 * Gives lxc-net's bridge IPv6 (`LXC_IPV6_ADDR`, `_MASK`, `_NETWORK`, `_NAT` in /etc/default/lxc-net): the
 * bridge takes PREFIX::1, dnsmasq sends router advertisements for the /64, and lxc-net masquerades the
 * network's traffic to elsewhere. Says which file it changed, if any; a bridge that has IPv6 already, and
 * no prefix asked for, is left as it is.
 */
export function configureIPv6(bridge: string, requested: Subnet6 | null): { changed: string[]; subnet: Subnet6 } {
  const current = bridgeIPv6(bridge);
  if (current && (requested === null || formatSubnet6(current.subnet) === formatSubnet6(requested))) return { changed: [], subnet: current.subnet };
  const defaults = existsSync(LXC_NET_DEFAULTS) ? readFileSync(LXC_NET_DEFAULTS, 'utf8') : '';
  const configured = parseSubnet6(shellVariable(defaults, 'LXC_IPV6_NETWORK') ?? '');
  const subnet = requested ?? configured ?? randomUlaPrefix();
  const lines = [
    `LXC_IPV6_ADDR="${formatIPv6(subnet.network + 1n)}"`,
    `LXC_IPV6_MASK="${subnet.prefix}"`,
    `LXC_IPV6_NETWORK="${formatSubnet6(subnet)}"`,
    'LXC_IPV6_NAT="true"',
  ];
  const heading = "# Added by thin-lxc setup --ipv6: IPv6 on lxc-net's bridge.";
  const kept = defaults
    .split('\n')
    .filter((line) => line !== heading && !/^\s*LXC_IPV6_(ADDR|MASK|NETWORK|NAT)=/.test(line))
    .join('\n')
    .replace(/\n*$/, '\n');
  const text = `${kept}\n${heading}\n${lines.join('\n')}\n`;
  if (text === defaults) return { changed: [], subnet };
  writeFileSync(LXC_NET_DEFAULTS, text);
  return { changed: [LXC_NET_DEFAULTS], subnet };
}

/** Restarts lxc-net so its dnsmasq reads the new options; running containers keep their links to the bridge. */
export function restartLxcNet(): void {
  if (!restartLxcNetService(LXC_NET_SCRIPTS)) throw new UserError('lxc-net is not installed: apt-get install lxc');
  if (!dnsmasqReadsReservations()) {
    throw new UserError(`lxc-net restarted but its dnsmasq does not read ${HOSTS_DIR}: check LXC_DHCP_CONFILE in ${LXC_NET_DEFAULTS}`);
  }
}
