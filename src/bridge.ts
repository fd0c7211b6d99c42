// The LXC bridge a container's first network device attaches to, and its subnet, read from the kernel.
import { existsSync, readFileSync } from 'node:fs';
import type { Bridge } from './address.js';
import { UserError } from './errors.js';
import { ipAddressesOf } from './ip.js';
import { contains, subnetOf, toAddress } from './ipv4.js';
import { connectedRoutes, localAddresses } from './kernel-routes.js';
import { lastValue, type ConfigEntry } from './lxc-config.js';
import { quote } from './validate.js';

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
  return bridgeFromProc(name) ?? bridgeFromIp(name);
}

/**
 * The fast path: the bridge's one connected route and the one host address inside it. Anything less
 * plain (no route because the link is down, several networks or addresses) is left to ip.
 */
export function bridgeFromProc(name: string): Bridge | null {
  try {
    const routes = connectedRoutes(readFileSync('/proc/net/route', 'utf8')).filter((route) => route.iface === name);
    if (routes.length !== 1) return null;
    const subnet = routes[0]!.subnet;
    const own = localAddresses(readFileSync('/proc/net/fib_trie', 'utf8')).filter((address) => contains(subnet, address));
    return own.length === 1 ? { name, gateway: toAddress(own[0]!), subnet } : null;
  } catch {
    return null;
  }
}

export function bridgeFromIp(name: string): Bridge {
  const output = ipAddressesOf(name);
  const parsed = JSON.parse(output) as { addr_info?: { local?: string; prefixlen?: number }[] }[];
  const info = parsed[0]?.addr_info?.find((entry) => entry.local && entry.prefixlen !== undefined);
  if (!info?.local || info.prefixlen === undefined) {
    throw new UserError(`bridge ${name} has no IPv4 address: restart lxc-net (systemctl restart lxc-net)`);
  }
  return { name, gateway: info.local, subnet: subnetOf(info.local, info.prefixlen) };
}
