// Choosing a thin container's bridge and static address from what the host shows: the bridge itself,
// other thin containers, dnsmasq's reservations and leases, the ARP table and, when needed, LXC.
import { checkAddress, nextFreeAddress, type AddressUse, type Bridge } from './address.js';
import { bridgeName, readBridge } from './bridge.js';
import type { ThinContainer } from './container.js';
import { dnsmasqPid, dnsmasqReadsReservations, leasedAddresses, neighbourAddresses, reservationExists, reservedAddresses } from './dhcp.js';
import { UserError } from './errors.js';
import type { ConfigEntry } from './lxc-config.js';
import { runningAddresses } from './lxc.js';
import { quote } from './validate.js';

/** The bridge the container's address lives on; null for a base without a veth on a bridge. */
export function networkOf(entries: readonly ConfigEntry[], baseSpec: string, needed: boolean): Bridge | null {
  const name = bridgeName(entries);
  if (name) return readBridge(name);
  if (needed) {
    throw new UserError(`base ${quote(baseSpec)} has no veth network device on a bridge (lxc.net.0): --ip and --publish need one`);
  }
  return null;
}

export function chooseAddress(name: string, requested: string | null, bridge: Bridge, others: readonly ThinContainer[], lxcpath: string): string {
  if (reservationExists(name)) {
    throw new UserError(`name ${quote(name)} already has an address reservation (another thin-lxc root?): choose another name`);
  }
  // A base whose init runs DHCP would replace a static address unless dnsmasq hands out the same one.
  const pid = dnsmasqPid();
  if (pid !== null && !dnsmasqReadsReservations(pid)) {
    throw new UserError(`lxc-net's dnsmasq does not read thin-lxc's address reservations yet: run thin-lxc setup once`);
  }
  const inUse: AddressUse[] = [
    ...others.flatMap((other) => (other.state.ip ? [{ address: other.state.ip, holder: `thin container ${other.state.name}` }] : [])),
    ...reservedAddresses(new Set(others.flatMap((other) => (other.state.ip ? [other.state.name] : [])))),
  ];
  // Asking LXC for every running container's addresses costs a process that grows with their number, so
  // only a requested address pays for it; a chosen one avoids leases and live neighbours instead.
  if (requested) return checkAddress(requested, bridge, [...inUse, ...runningAddresses(lxcpath), ...neighbourAddresses(bridge.name)]);
  try {
    return nextFreeAddress(bridge, [...inUse, ...leasedAddresses(bridge.name), ...neighbourAddresses(bridge.name)]);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    // Leases and ARP entries outlive the containers that made them (an hour, minutes): when they fill the
    // subnet, fall back to what is exactly known to be taken. dnsmasq never gives a reserved address away.
    return nextFreeAddress(bridge, [...inUse, ...runningAddresses(lxcpath)]);
  }
}
