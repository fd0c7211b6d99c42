// The LXC bridge a container's first network device attaches to, and its subnets, read from the kernel's
// routes and local addresses in /proc (IPv6: /proc/net/if_inet6). (Asking ip instead costs a process,
// ~2.3 ms of a ~45 ms create, ~5%, measured when this was judged again; it is the one way thin-lxc learns
// the bridge.)
import { existsSync, readFileSync } from 'node:fs';
import { UserError } from '../core/errors.js';
import { formatIPv6, quote } from '../core/validate.js';
import { contains, toAddress, toNumber, type Subnet } from './ipv4.js';
import { subnet6Of, type Subnet6 } from './ipv6.js';

export interface Bridge {
  name: string;
  /** The bridge's own address: the containers' gateway. */
  gateway: string;
  subnet: Subnet;
  /** Its IPv6 network, when it has a global one (lxc-net's LXC_IPV6_ADDR, thin-lxc setup --ipv6). */
  ipv6: BridgeIPv6 | null;
}

/** A container's LXC config as its caller parsed it (lxc/config's entries), in order: network/ does not read LXC. */
export type ConfigEntries = readonly { readonly key: string; readonly value: string }[];

export interface BridgeIPv6 {
  /** The bridge's own IPv6 address: the containers' IPv6 gateway. */
  gateway: string;
  subnet: Subnet6;
}

/** The bridge of lxc.net.0 when it is a veth on a bridge (what lxc-net and LXC's default config make), else null. */
export function bridgeName(entries: ConfigEntries): string | null {
  // LXC keeps the last value of a single-valued key.
  const last = (key: string) => entries.findLast((entry) => entry.key === key)?.value;
  if (last('lxc.net.0.type') !== 'veth') return null;
  return last('lxc.net.0.link') ?? null;
}

export function readBridge(name: string): Bridge {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new UserError(`bridge ${quote(name)} is not an interface name`);
  if (!existsSync(`/sys/class/net/${name}`)) {
    throw new UserError(
      `bridge ${name} does not exist: start it with systemctl start lxc-net (or USE_LXC_BRIDGE=true /usr/libexec/lxc/lxc-net start)`,
    );
  }
  return { ...bridgeOf(name, readFileSync('/proc/net/route', 'utf8'), readFileSync('/proc/net/fib_trie', 'utf8')), ipv6: bridgeIPv6(name) };
}

/** The bridge's IPv6 network: null on a bridge without one, and on a host without IPv6 (no /proc/net/if_inet6). */
export function bridgeIPv6(name: string): BridgeIPv6 | null {
  let table: string;
  try {
    table = readFileSync('/proc/net/if_inet6', 'utf8');
  } catch {
    return null;
  }
  return ipv6Of(name, table);
}

/**
 * /proc/net/if_inet6 lines: ADDRESS (32 hex digits) IFINDEX PREFIX-LENGTH SCOPE FLAGS NAME, hex numbers.
 * The first address of global scope (0) whose duplicate address detection did not fail (flag 0x08) is the bridge's.
 */
export function ipv6Of(name: string, table: string): BridgeIPv6 | null {
  for (const line of table.split('\n')) {
    const [hex, , prefixHex, scope, flags, iface] = line.trim().split(/\s+/);
    if (iface !== name || scope !== '00' || !hex || !/^[0-9a-f]{32}$/.test(hex) || (parseInt(flags ?? '0', 16) & 0x08) !== 0) continue;
    const value = BigInt(`0x${hex}`);
    const prefix = parseInt(prefixHex ?? '', 16);
    if (!(prefix >= 1 && prefix <= 128)) continue;
    return { gateway: formatIPv6(value), subnet: subnet6Of(value, prefix) };
  }
  return null;
}

/**
 * The bridge's network is its first connected route that holds one of the host's own addresses, which is
 * the gateway. A bridge that is down has no connected route: its containers could not reach it either.
 */
export function bridgeOf(name: string, routeTable: string, fibTrie: string): Omit<Bridge, 'ipv6'> {
  const local = localAddresses(fibTrie);
  for (const { subnet } of connectedRoutes(routeTable).filter((route) => route.iface === name)) {
    const gateway = local.find((address) => contains(subnet, address));
    if (gateway !== undefined) return { name, gateway: toAddress(gateway), subnet };
  }
  throw new UserError(`bridge ${name} has no IPv4 network up: bring it up (ip link set ${name} up), or restart lxc-net (systemctl restart lxc-net)`);
}

/** /proc/net/route stores addresses as little-endian hex, e.g. 0003000A for 10.0.3.0. */
function fromProcHex(hex: string): number | null {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return null;
  const bytes = hex.match(/../g)!.map((pair) => parseInt(pair, 16));
  return bytes.reduceRight((value, byte) => value * 256 + byte, 0);
}

function prefixOf(mask: number): number | null {
  const bits = mask.toString(2).padStart(32, '0');
  return /^1*0*$/.test(bits) ? (bits.indexOf('0') === -1 ? 32 : bits.indexOf('0')) : null;
}

/** Routes without a gateway that are up (RTF_UP): what the kernel made for each address's own network. */
export function connectedRoutes(routeTable: string): { iface: string; subnet: Subnet }[] {
  const routes: { iface: string; subnet: Subnet }[] = [];
  for (const line of routeTable.split('\n').slice(1)) {
    const [iface, destination, gateway, flags, , , , mask] = line.trim().split(/\s+/);
    if (!iface || !destination || !flags || !mask || gateway !== '00000000' || (parseInt(flags, 16) & 1) === 0) continue;
    const network = fromProcHex(destination);
    const maskValue = fromProcHex(mask);
    const prefix = maskValue === null ? null : prefixOf(maskValue);
    if (network === null || prefix === null) continue;
    routes.push({ iface, subnet: { network, prefix } });
  }
  return routes;
}

/** The host's own addresses: /proc/net/fib_trie lists each as "|-- ADDRESS" followed by "/32 host LOCAL". */
export function localAddresses(fibTrie: string): number[] {
  const found = new Set<number>();
  const lines = fibTrie.split('\n');
  lines.forEach((line, index) => {
    const address = /^\s*\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line)?.[1];
    if (address && /^\s*\/32 host LOCAL$/.test(lines[index + 1] ?? '')) found.add(toNumber(address));
  });
  return [...found];
}
