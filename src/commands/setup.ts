// thin-lxc setup: prepares the host once (idempotent): lxc-net's dnsmasq reads thin-lxc's address reservations.
import { dnsmasqPid, dnsmasqReadsReservations, HOSTS_DIR } from '../dhcp.js';
import { configureDnsmasq, restartLxcNet } from '../lxc-net.js';

export function setup(): string {
  const changed = configureDnsmasq();
  const lines = changed.map((file) => `updated ${file}`);
  if (changed.length > 0 || (dnsmasqPid() !== null && !dnsmasqReadsReservations()) || dnsmasqPid() === null) {
    restartLxcNet();
    lines.push('restarted lxc-net');
  }
  lines.push(`lxc-net's dnsmasq reads static address reservations from ${HOSTS_DIR}: thin containers keep their addresses.`);
  return lines.join('\n');
}
