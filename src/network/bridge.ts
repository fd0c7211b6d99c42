// The LXC bridge a container's first network device attaches to, and its subnet, read from the kernel's
// routes and local addresses in /proc. (Asking ip instead costs a process, ~2.3 ms of a ~45 ms create, ~5%,
// measured when this was judged again; it is the one way thin-lxc learns the bridge.)
import { existsSync, readFileSync } from 'node:fs';
import { UserError } from '../core/errors.js';
import { quote } from '../core/validate.js';
import { lastValue, type ConfigEntry } from '../lxc/config.js';
import { contains, toAddress, toNumber, type Subnet } from './ipv4.js';

export interface Bridge {
  name: string;
  /** The bridge's own address: the containers' gateway. */
  gateway: string;
  subnet: Subnet;
}

/** The bridge of lxc.net.0 when it is a veth on a bridge (what lxc-net and LXC's default config make), else null. */
export function bridgeName(entries: readonly ConfigEntry[]): string | null {
  if (lastValue(entries, 'lxc.net.0.type') !== 'veth') return null;
  return lastValue(entries, 'lxc.net.0.link') ?? null;
}

export function readBridge(name: string): Bridge {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new UserError(`bridge ${quote(name)} is not an interface name`);
  if (!existsSync(`/sys/class/net/${name}`)) {
    throw new UserError(
      `bridge ${name} does not exist: start it with systemctl start lxc-net (or USE_LXC_BRIDGE=true /usr/libexec/lxc/lxc-net start)`,
    );
  }
  return bridgeOf(name, readFileSync('/proc/net/route', 'utf8'), readFileSync('/proc/net/fib_trie', 'utf8'));
}

/**
 * The bridge's network is its first connected route that holds one of the host's own addresses, which is
 * the gateway. A bridge that is down has no connected route: its containers could not reach it either.
 */
export function bridgeOf(name: string, routeTable: string, fibTrie: string): Bridge {
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
