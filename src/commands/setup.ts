// thin-lxc setup: prepares the host once (idempotent): lxc-net's dnsmasq reads thin-lxc's address reservations.
import { UserError } from '../core/errors.js';
import { missingPackages } from '../core/exec.js';
import { dnsmasqPid, dnsmasqReadsReservations, HOSTS_DIR, NAMES_DIR } from '../network/dhcp.js';
import { configureDnsmasq, restartLxcNet } from '../network/lxc-net.js';

/** What thin-lxc and its hooks run, for a host where LXC was installed by hand or only partly. */
const NEEDED = ['lxc-start', 'lxc-info', 'lxc-ls', 'dnsmasq', 'iptables', 'iptables-save', 'iptables-restore', 'ip', 'mount', 'flock'];

export function setup(): string {
  const missing = missingPackages(NEEDED);
  if (missing.length > 0) throw new UserError(`thin-lxc needs packages this host lacks: apt-get install ${missing.join(' ')}`);
  const changed = configureDnsmasq();
  const lines = changed.map((file) => `updated ${file}`);
  if (changed.length > 0 || (dnsmasqPid() !== null && !dnsmasqReadsReservations()) || dnsmasqPid() === null) {
    restartLxcNet();
    lines.push('restarted lxc-net');
  }
  lines.push(`lxc-net's dnsmasq reads static address reservations from ${HOSTS_DIR} and names from ${NAMES_DIR}: thin containers keep their addresses and are found by name.`);
  return lines.join('\n');
}
