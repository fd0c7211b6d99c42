// The LXC bridge a container's first network device attaches to, and its subnet, read from the kernel.
import { existsSync } from 'node:fs';
import type { Bridge } from './address.js';
import { UserError } from './errors.js';
import { run } from './exec.js';
import { subnetOf } from './ipv4.js';
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
  const output = run('ip', ['-4', '-j', 'addr', 'show', 'dev', name]).stdout;
  const parsed = JSON.parse(output) as { addr_info?: { local?: string; prefixlen?: number }[] }[];
  const info = parsed[0]?.addr_info?.find((entry) => entry.local && entry.prefixlen !== undefined);
  if (!info?.local || info.prefixlen === undefined) {
    throw new UserError(`bridge ${name} has no IPv4 address: restart lxc-net (systemctl restart lxc-net)`);
  }
  return { name, gateway: info.local, subnet: subnetOf(info.local, info.prefixlen) };
}
