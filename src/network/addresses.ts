// A thin container's addresses on the bridge: a MAC for each network device, a static IPv4 address that
// is free, checked or chosen from what the host shows (other thin containers, dnsmasq's reservations and
// leases, the ARP table, and LXC when needed), and claimed from a host that is gone; and, on a bridge with
// IPv6, a static IPv6 address.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ThinContainer } from '../state/paths.js';
import type { ThinState } from '../state/state.js';
import { containerLinks, ipNeighbourFlush, setIPv6Token } from '../core/commands.js';
import { UserError } from '../core/errors.js';
import { formatIPv6, parseIPv6, quote } from '../core/validate.js';
import { bridgeName, readBridge, type Bridge, type ConfigEntries } from './bridge.js';
import {
  dnsmasqPid,
  dnsmasqReadsReservations,
  leasedAddresses,
  leaseEnds,
  leaseOf,
  releaseLease,
  reservationExists,
  reservedAddresses,
  sendDatagram,
  type Holding,
} from './dhcp.js';
import { broadcastOf, contains, formatSubnet, toAddress, toNumber } from './ipv4.js';
import { contains6, formatSubnet6, linkWithMac, slaacAddress, tokenOf } from './ipv6.js';

/** An address and who holds it, for the message: "thin container web1", "running container db". */
export type AddressUse = Holding;

/**
 * What LXC knows that choosing and claiming an address needs, read by the caller (network/ does not read LXC):
 * functions, so that only the paths that need them pay for them. `running`: the IPv4 addresses of the running
 * LXC containers, held by "running container NAME"; `macOwners`: the LXC containers whose config has that MAC.
 */
export interface LxcAddresses {
  running: () => readonly AddressUse[];
  macOwners: (mac: string) => readonly string[];
}

export function checkAddress(requested: string, bridge: Bridge, inUse: readonly AddressUse[]): string {
  const value = toNumber(requested);
  const range = formatSubnet(bridge.subnet);
  if (!contains(bridge.subnet, value)) {
    throw new UserError(`ip ${requested} is outside ${bridge.name}'s subnet ${range}: choose one inside it, or leave --ip out`);
  }
  const special =
    value === bridge.subnet.network
      ? 'the network address'
      : value === broadcastOf(bridge.subnet)
        ? 'the broadcast address'
        : requested === bridge.gateway
          ? `the gateway (${bridge.name}'s own address)`
          : null;
  if (special) throw new UserError(`ip ${requested} is ${special} of ${range}: choose another, or leave --ip out`);
  const holder = inUse.find((use) => use.address === requested)?.holder;
  if (holder) throw new UserError(`ip ${requested} is already used by ${holder}: choose another, or leave --ip out`);
  return requested;
}

/**
 * The next free address, counting down from the top of the subnet: lxc-net's dnsmasq leases from
 * the bottom, so static addresses and dynamic leases meet as late as possible.
 */
export function nextFreeAddress(bridge: Bridge, inUse: readonly AddressUse[]): string {
  const used = new Set([...inUse.map((use) => use.address), bridge.gateway]);
  for (let value = broadcastOf(bridge.subnet) - 1; value > bridge.subnet.network; value--) {
    const address = toAddress(value);
    if (!used.has(address)) return address;
  }
  throw new UserError(`no free address left in ${bridge.name}'s subnet ${formatSubnet(bridge.subnet)}: destroy a thin container or widen the subnet`);
}

/** The bridge the container's address lives on; null for a base without a veth on a bridge. */
export function networkOf(entries: ConfigEntries, baseSpec: string, needed: boolean): Bridge | null {
  const name = bridgeName(entries);
  if (name) return readBridge(name);
  if (needed) {
    throw new UserError(`base ${quote(baseSpec)} has no veth network device on a bridge (lxc.net.0): --ip and --publish need one`);
  }
  return null;
}

export function chooseAddress(
  name: string,
  requested: string | null,
  bridge: Bridge,
  others: readonly ThinContainer[],
  running: LxcAddresses['running'],
  /** A container of this name that a replace destroys before making this one: its reservation and address are free. */
  replacing?: { name: string; ip: string | null },
): string {
  const own = replacing?.name === name ? replacing : undefined;
  if (reservationExists(name) && !own) {
    throw new UserError(`name ${quote(name)} already has an address reservation (another thin-lxc root?): choose another name`);
  }
  // A base whose init runs DHCP would replace a static address unless dnsmasq hands out the same one.
  const pid = dnsmasqPid();
  if (pid !== null && !dnsmasqReadsReservations(pid)) {
    throw new UserError(`lxc-net's dnsmasq does not read thin-lxc's address reservations yet: run thin-lxc setup once`);
  }
  const inUse: AddressUse[] = [
    ...others.flatMap((other) => (other.state.ip ? [{ address: other.state.ip, holder: `thin container ${other.state.name}` }] : [])),
    ...reservedAddresses(new Set([...others.flatMap((other) => (other.state.ip ? [other.state.name] : [])), ...(own ? [own.name] : [])])),
  ];
  // Reading every running container's addresses costs a scan of /proc that grows with their number, so
  // only a requested address pays for it; a chosen one avoids leases and live neighbours instead.
  // Whether a host still answers for it, or dnsmasq still leases it, is for claimAddress to find out.
  const live = () => running().filter((use) => !(own && use.address === own.ip && use.holder === `running container ${own.name}`));
  if (requested) return checkAddress(requested, bridge, [...inUse, ...live()]);
  try {
    return nextFreeAddress(bridge, [...inUse, ...leasedAddresses(bridge.name), ...neighbourAddresses(bridge.name)]);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    // Leases and ARP entries outlive the containers that made them (an hour, minutes): when they fill the
    // subnet, fall back to what is exactly known to be taken. dnsmasq never gives a reserved address away.
    return nextFreeAddress(bridge, [...inUse, ...live()]);
  }
}

/**
 * Makes a requested address free for a new MAC, or says who has it: the host the ARP table or dnsmasq's
 * leases remember for it may be gone (a destroyed container, a host unplugged), or may be a stopped
 * container that will ask for it again, or may be live. A lease of a MAC that nothing has any more is
 * ended, since dnsmasq would otherwise give the new MAC another address beside the static one.
 */
export async function claimAddress(bridge: Bridge, address: string, macOwners: LxcAddresses['macOwners']): Promise<void> {
  const lease = leaseOf(bridge.name, address);
  const seen = neighbourAddresses(bridge.name).find((use) => use.address === address);
  if (!lease && !seen) return;
  const mac = lease?.mac ?? seen?.mac ?? '';
  const owner = macOwners(mac)[0];
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

/** Addresses the host has recently talked to on the bridge (its ARP table): live, whoever configured them. */
function neighbourAddresses(bridge: string): (AddressUse & { mac: string })[] {
  let text: string;
  try {
    text = readFileSync('/proc/net/arp', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[5] === bridge && fields[2] !== '0x0')
    .map((fields) => ({ address: fields[0]!, holder: `a live host on ${bridge} (${fields[3]})`, mac: fields[3] ?? '' }));
}

/**
 * Whether a host on the bridge answers for `address` now: the kernel's ARP entry is dropped, a datagram
 * to the discard port makes it ask again, and a live host answers within milliseconds. The ARP table
 * alone remembers hosts that are gone for minutes.
 */
async function answersOnBridge(bridge: string, address: string, timeoutMs = 500): Promise<boolean> {
  ipNeighbourFlush(address, bridge);
  await sendDatagram(Buffer.from('thin-lxc: is this address in use?\n'), address, 9);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (neighbourAddresses(bridge).some((use) => use.address === address)) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

/**
 * The container's IPv6 address on a bridge with IPv6: the one asked for, checked against the bridge and the
 * other thin containers, or the one SLAAC gives its MAC (see slaacAddress), or else the lowest free. null
 * on a bridge without IPv6, where asking for one is an error.
 */
export function chooseAddress6(requested: string | null, mac: string, bridge: Bridge, others: readonly ThinContainer[]): string | null {
  const ipv6 = bridge.ipv6;
  if (!ipv6) {
    if (requested === null) return null;
    throw new UserError(`${bridge.name} has no IPv6 network for --ip6 ${requested}: give it one with thin-lxc setup --ipv6, or leave --ip6 out`);
  }
  const taken = new Map<string, string>(others.flatMap(({ state }) => (state.ip6 ? [[state.ip6, `thin container ${state.name}`] as const] : [])));
  taken.set(ipv6.gateway, `the gateway (${bridge.name}'s own address)`);
  if (requested !== null) {
    const value = parseIPv6(requested)!;
    const subnet = formatSubnet6(ipv6.subnet);
    if (!contains6(ipv6.subnet, value)) throw new UserError(`ip6 ${requested} is outside ${bridge.name}'s IPv6 network ${subnet}: choose one inside it`);
    if (value === ipv6.subnet.network) throw new UserError(`ip6 ${requested} is the network address of ${subnet}: choose another`);
    const holder = taken.get(requested);
    if (holder) throw new UserError(`ip6 ${requested} is already used by ${holder}: choose another, or leave --ip6 out`);
    return requested;
  }
  const derived = slaacAddress(ipv6.subnet, mac);
  if (derived !== null && !taken.has(formatIPv6(derived))) return formatIPv6(derived);
  for (let offset = 2n; offset < 65_536n; offset++) {
    const candidate = formatIPv6(ipv6.subnet.network + offset);
    if (!taken.has(candidate) && contains6(ipv6.subnet, ipv6.subnet.network + offset)) return candidate;
  }
  throw new UserError(`no free IPv6 address left in ${bridge.name}'s ${formatSubnet6(ipv6.subnet)}: give one with --ip6`);
}

/**
 * A container's IPv6 address once its bridge's network changed (setup --ipv6 with another prefix): its interface
 * identifier (lower 64 bits) under the new prefix, so that a default address is still its MAC's SLAAC one and a
 * chosen one keeps its token; another free one when that is taken. null when the address is inside the bridge's
 * network, or the container or the bridge has none.
 */
export function readdress6(state: Pick<ThinState, 'ip6' | 'hwaddrs'>, bridge: Bridge, others: readonly ThinContainer[]): string | null {
  const value = state.ip6 === null ? null : parseIPv6(state.ip6);
  const mac = state.hwaddrs['0'];
  if (value === null || !bridge.ipv6 || !mac || contains6(bridge.ipv6.subnet, value)) return null;
  const kept = formatIPv6(bridge.ipv6.subnet.network | (value & ((1n << 64n) - 1n)));
  try {
    return chooseAddress6(kept, mac, bridge, others);
  } catch {
    return chooseAddress6(null, mac, bridge, others);
  }
}

/**
 * At start (host side, before init runs): gives the container's interface the SLAAC token that makes an
 * address chosen with --ip6 come back, as the default one does, when its init flushes the interface (see
 * network/ipv6.ts). Nothing for a default address, whose MAC already makes it.
 */
export function keepChosenIPv6(state: Pick<ThinState, 'ip6' | 'subnet6' | 'hwaddrs'>, pid: string): void {
  const token = tokenOf(state);
  const mac = state.hwaddrs['0'];
  if (!token || !mac || pid === '') return;
  const device = linkWithMac(containerLinks(pid), mac);
  if (!device) throw new UserError(`no interface with MAC ${mac} in the container (pid ${pid}) to keep IPv6 address ${state.ip6} on: is lxc.net.0.hwaddr changed?`);
  setIPv6Token(pid, device, token);
}

/** 00:16:3e is the prefix LXC itself uses for the addresses it makes up. */
export function randomMac(random: (size: number) => Uint8Array = randomBytes): string {
  const bytes = [...random(3)].map((byte) => byte.toString(16).padStart(2, '0'));
  return ['00', '16', '3e', ...bytes].join(':');
}

/** A new address for each network index, none of them in `taken`. */
export function assignMacs(indexes: readonly number[], taken: ReadonlySet<string>, random?: (size: number) => Uint8Array): Record<string, string> {
  const used = new Set(taken);
  const assigned: Record<string, string> = {};
  for (const index of indexes) {
    let mac = randomMac(random);
    for (let attempt = 0; used.has(mac) && attempt < 100; attempt++) mac = randomMac(random);
    used.add(mac);
    assigned[String(index)] = mac;
  }
  return assigned;
}
