// lxc-net, the service behind lxcbr0 and its dnsmasq: pointing that dnsmasq at thin-lxc's address reservations
// and names.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { restartLxcNetService } from '../core/commands.js';
import { UserError } from '../core/errors.js';
import { DNSMASQ_LINES, HOSTS_DIR, NAMES_DIR, dnsmasqReadsReservations, missingDnsmasqLines } from './dhcp.js';

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

/** Makes lxc-net's dnsmasq read HOSTS_DIR and NAMES_DIR; says which files it changed, if any. */
export function configureDnsmasq(): string[] {
  mkdirSync(HOSTS_DIR, { recursive: true, mode: 0o755 });
  mkdirSync(NAMES_DIR, { recursive: true, mode: 0o755 });
  const defaults = existsSync(LXC_NET_DEFAULTS) ? readFileSync(LXC_NET_DEFAULTS, 'utf8') : '';
  const confFile = shellVariable(defaults, 'LXC_DHCP_CONFILE');
  if (confFile === undefined) {
    mkdirSync(dirname(THIN_DNSMASQ_CONF), { recursive: true });
    writeFileSync(THIN_DNSMASQ_CONF, `# lxc-net's dnsmasq reads thin-lxc's static address reservations and names from here (thin-lxc setup).\n${DNSMASQ_LINES.join('\n')}\n`);
    appendFileSync(LXC_NET_DEFAULTS, `\n# Added by thin-lxc setup: dnsmasq options for lxcbr0, with thin-lxc's address reservations.\nLXC_DHCP_CONFILE=${THIN_DNSMASQ_CONF}\n`);
    return [THIN_DNSMASQ_CONF, LXC_NET_DEFAULTS];
  }
  const missing = missingDnsmasqLines(confFile);
  if (missing.length === 0) return [];
  appendFileSync(confFile, `\n# Added by thin-lxc setup: thin-lxc's static address reservations and names.\n${missing.join('\n')}\n`);
  return [confFile];
}

/** Restarts lxc-net so its dnsmasq reads the new options; running containers keep their links to the bridge. */
export function restartLxcNet(): void {
  if (!restartLxcNetService(LXC_NET_SCRIPTS)) throw new UserError('lxc-net is not installed: apt-get install lxc');
  if (!dnsmasqReadsReservations()) {
    throw new UserError(`lxc-net restarted but its dnsmasq does not read ${HOSTS_DIR}: check LXC_DHCP_CONFILE in ${LXC_NET_DEFAULTS}`);
  }
}
