// What the suites that change lxcbr0's IPv6 share: lxc-net itself, putting its settings back afterwards, and a
// container's IPv6 addresses as its own network namespace shows them.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { LXC_NET_DEFAULTS, shellVariable, THIN_DNSMASQ_CONF } from '../../src/network/lxc-net.js';
import { type Cleanup, must } from './host.js';

const LXC_NET = ['/usr/libexec/lxc/lxc-net', '/usr/lib/x86_64-linux-gnu/lxc/lxc-net', '/usr/lib/lxc/lxc-net'].find((path) => existsSync(path)) ?? '/usr/libexec/lxc/lxc-net';
const FORWARDING = '/proc/sys/net/ipv6/conf/all/forwarding';

export const lxcNet = (action: 'start' | 'stop') => execa(LXC_NET, [action], { reject: false, env: { ...process.env, USE_LXC_BRIDGE: 'true' } });

/** A file's text, or null when it does not exist: what to put back. */
const snapshot = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : null);
const putBack = (path: string, text: string | null) => (text === null ? rmSync(path, { force: true }) : writeFileSync(path, text));

/**
 * Saves lxc-net's settings, its dnsmasq options and IPv6 forwarding now, and puts them back in `cleanup`: lxc-net
 * stopped with the settings of the test (so it removes its IPv6 masquerading), the files, lxc-net started.
 */
export function keepLxcNetAsItWas(cleanup: Cleanup): void {
  const defaults = snapshot(LXC_NET_DEFAULTS);
  const confFile = shellVariable(defaults ?? '', 'LXC_DHCP_CONFILE') ?? THIN_DNSMASQ_CONF;
  const conf = snapshot(confFile);
  const forwarding = readFileSync(FORWARDING, 'utf8').trim();
  cleanup.add(async () => {
    await lxcNet('stop');
    putBack(LXC_NET_DEFAULTS, defaults);
    putBack(confFile, conf);
    await lxcNet('start');
    writeFileSync(FORWARDING, forwarding);
  });
}

/** The container's global IPv6 addresses on eth0, read from its network namespace. */
export async function addresses6(name: string): Promise<string[]> {
  const pid = (await must('lxc-info', ['-n', name, '-p', '-H'])).trim();
  const shown = await must('nsenter', ['-t', pid, '-n', 'ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
  return [...shown.matchAll(/inet6 ([0-9a-f:]+)\//g)].map((match) => match[1]!);
}

/** Until eth0 has it: after the init's flush, the next router advertisement (~20 s at most here); 45 s at most. */
export async function waitFor6(name: string, address: string): Promise<boolean> {
  for (let i = 0; i < 180; i++) {
    if ((await addresses6(name)).includes(address)) return true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}
