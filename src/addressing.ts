// Choosing a thin container's bridge and static address from what the host shows: the bridge itself,
// other thin containers, dnsmasq's reservations and leases, the ARP table and, when needed, LXC.
import { checkAddress, nextFreeAddress, type AddressUse, type Bridge } from './address.js';
import { bridgeName, readBridge } from './bridge.js';
import type { ThinContainer } from './container.js';
import { answersOnBridge, dnsmasqPid, dnsmasqReadsReservations, leasedAddresses, leaseEnds, leaseOf, neighbourAddresses, releaseLease, reservationExists, reservedAddresses } from './dhcp.js';
import { UserError } from './errors.js';
import type { ConfigEntry } from './lxc-config.js';
import { containersWithMac, runningAddresses } from './lxc.js';
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
  // Whether a host still answers for it, or dnsmasq still leases it, is for claimAddress to find out.
  if (requested) return checkAddress(requested, bridge, [...inUse, ...runningAddresses(lxcpath)]);
  try {
    return nextFreeAddress(bridge, [...inUse, ...leasedAddresses(bridge.name), ...neighbourAddresses(bridge.name)]);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    // Leases and ARP entries outlive the containers that made them (an hour, minutes): when they fill the
    // subnet, fall back to what is exactly known to be taken. dnsmasq never gives a reserved address away.
    return nextFreeAddress(bridge, [...inUse, ...runningAddresses(lxcpath)]);
  }
}

/**
 * Makes a requested address free for a new MAC, or says who has it: the host the ARP table or dnsmasq's
 * leases remember for it may be gone (a destroyed container, a host unplugged), or may be a stopped
 * container that will ask for it again, or may be live. A lease of a MAC that nothing has any more is
 * ended, since dnsmasq would otherwise give the new MAC another address beside the static one.
 */
export async function claimAddress(bridge: Bridge, address: string, lxcpath: string): Promise<void> {
  const lease = leaseOf(bridge.name, address);
  const seen = neighbourAddresses(bridge.name).find((use) => use.address === address);
  if (!lease && !seen) return;
  const mac = lease?.mac ?? seen?.mac ?? '';
  const owner = containersWithMac(lxcpath, mac)[0];
  if (owner) throw new UserError(`ip ${address} is leased to LXC container ${owner} (MAC ${mac}): choose another, or leave --ip out`);
  if (await answersOnBridge(bridge.name, address)) {
    throw new UserError(`ip ${address} is in use by a live host on ${bridge.name} (MAC ${mac}): choose another, or leave --ip out`);
  }
  if (!lease) return;
  await releaseLease(bridge.gateway, address, lease.mac);
  if (!(await leaseEnds(bridge.name, address, lease.mac))) {
    throw new UserError(
      `ip ${address} is still leased to ${lease.mac} by lxc-net's dnsmasq, which did not take the release: choose another address, or leave --ip out`,
    );
  }
}
