// IPv6 arithmetic on 128-bit numbers: networks, membership, a stable address for each container, and the
// ULA prefix thin-lxc setup --ipv6 makes up.
import { randomBytes } from 'node:crypto';
import { formatIPv6, parseIPv6 } from '../core/validate.js';

export interface Subnet6 {
  network: bigint;
  prefix: number;
}

const ALL = (1n << 128n) - 1n;

export function subnet6Of(value: bigint, prefix: number): Subnet6 {
  const host = (1n << BigInt(128 - prefix)) - 1n;
  return { network: value & (ALL ^ host), prefix };
}

export function contains6(subnet: Subnet6, value: bigint): boolean {
  return subnet6Of(value, subnet.prefix).network === subnet.network;
}

export function formatSubnet6(subnet: Subnet6): string {
  return `${formatIPv6(subnet.network)}/${subnet.prefix}`;
}

/** `fd42:7a3b:1c00::/64` as a network; null when it is not one (host bits set, or no prefix length). */
export function parseSubnet6(text: string): Subnet6 | null {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const value = match ? parseIPv6(match[1]!) : null;
  const prefix = Number(match?.[2]);
  if (value === null || !(prefix >= 1 && prefix <= 128)) return null;
  const subnet = subnet6Of(value, prefix);
  return subnet.network === value ? subnet : null;
}

/**
 * The address SLAAC gives a MAC in a /64 (EUI-64: the MAC with ff:fe in the middle and the U/L bit flipped).
 * A container's default IPv6 address is this one, set statically by LXC at start: when its init flushes eth0
 * (busybox's udhcpc script does), the next router advertisement makes exactly the same address again.
 * null for a network that is not a /64, where SLAAC does not work.
 */
export function slaacAddress(subnet: Subnet6, mac: string): bigint | null {
  if (subnet.prefix !== 64) return null;
  const bytes = mac.split(':').map((byte) => parseInt(byte, 16));
  if (bytes.length !== 6 || bytes.some((byte) => !(byte >= 0 && byte <= 255))) return null;
  const eui64 = [bytes[0]! ^ 0x02, bytes[1]!, bytes[2]!, 0xff, 0xfe, bytes[3]!, bytes[4]!, bytes[5]!];
  return subnet.network | eui64.reduce((value, byte) => (value << 8n) | BigInt(byte), 0n);
}

/**
 * The interface identifier (`ip token`) that makes SLAAC give the container `address` instead of its EUI-64
 * one: its lower 64 bits. null when SLAAC makes `address` anyway (the default address), or cannot (not a /64).
 */
export function slaacToken(address: string, subnet: string, mac: string): string | null {
  const network = parseSubnet6(subnet);
  const value = parseIPv6(address);
  if (!network || value === null || network.prefix !== 64 || slaacAddress(network, mac) === value) return null;
  return formatIPv6(value & ((1n << 64n) - 1n));
}

/** The token a container's start sets to keep its IPv6 address: for an address chosen with --ip6 only. */
export function tokenOf(state: { ip6: string | null; subnet6: string | null; hwaddrs: Record<string, string> }): string | null {
  const mac = state.hwaddrs['0'];
  return state.ip6 && state.subnet6 && mac ? slaacToken(state.ip6, state.subnet6, mac) : null;
}

/** The interface `ip -o link` lists with this MAC (its name before any @peer), or null. */
export function linkWithMac(ipLinkOutput: string, mac: string): string | null {
  for (const line of ipLinkOutput.split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    if (name && line.toLowerCase().includes(`link/ether ${mac.toLowerCase()} `)) return name;
  }
  return null;
}

/** RFC 4193: fd, a random 40-bit global ID, subnet 0: a /64 no other network is likely to have. */
export function randomUlaPrefix(random: (size: number) => Uint8Array = randomBytes): Subnet6 {
  const id = [...random(5)].reduce((value, byte) => (value << 8n) | BigInt(byte), 0n);
  return { network: (0xfdn << 120n) | (id << 80n), prefix: 64 };
}
