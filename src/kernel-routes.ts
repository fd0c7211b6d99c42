// The kernel's IPv4 routes and local addresses as /proc prints them, so that create can learn the
// bridge's subnet without running a process (loading child_process and running ip costs ~9 ms).
import type { Subnet } from './ipv4.js';
import { toNumber } from './ipv4.js';

export interface ConnectedRoute {
  iface: string;
  subnet: Subnet;
}

/** /proc/net/route stores addresses as little-endian hex, e.g. 0003000A for 10.0.3.0. */
function fromProcHex(hex: string): number | null {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return null;
  const bytes = hex.match(/../g)!.map((pair) => parseInt(pair, 16));
  return bytes.reduceRight((value, byte) => value * 256 + byte, 0);
}

function prefixOf(mask: number): number | null {
  const bits = mask.toString(2).padStart(32, '0');
  return /^1*0*$/.test(bits) ? bits.indexOf('0') === -1 ? 32 : bits.indexOf('0') : null;
}

/** Routes without a gateway that are up (RTF_UP): what the kernel made for each address's own network. */
export function connectedRoutes(routeTable: string): ConnectedRoute[] {
  const routes: ConnectedRoute[] = [];
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
