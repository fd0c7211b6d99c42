// Network helpers for end-to-end tests: a client "host" in a network namespace, servers inside containers,
// clients with bounded retries. Traffic goes only to loopback, the test's own containers and namespaces.
import { Resolver } from 'node:dns/promises';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { attach, must, sh } from './host.js';

export interface Namespace {
  name: string;
  /** The host's address on the veth pair: "another host" reaches the host through it. */
  hostAddress: string;
  /** With `ipv6`: the host's and the namespace's IPv6 addresses on the pair, in a ULA /64 of the test's own. */
  hostAddress6: string;
  address6: string;
  remove(): Promise<void>;
}

/** A network namespace joined to the host by a veth pair, standing for another machine; with `ipv6`, on both families. */
export async function makeNamespace(tag: string, options: { ipv6?: boolean } = {}): Promise<Namespace> {
  const name = `${tag}ns`;
  const hostSide = `${tag}h`;
  const hostAddress = '10.213.57.1';
  const remove = async () => {
    await sh('ip', ['netns', 'del', name]);
    await sh('ip', ['link', 'del', hostSide]);
  };
  await remove();
  await must('ip', ['netns', 'add', name]);
  await must('ip', ['link', 'add', hostSide, 'type', 'veth', 'peer', 'name', `${tag}n`]);
  await must('ip', ['link', 'set', `${tag}n`, 'netns', name]);
  await must('ip', ['addr', 'add', `${hostAddress}/30`, 'dev', hostSide]);
  await must('ip', ['link', 'set', hostSide, 'up']);
  await must('ip', ['-n', name, 'addr', 'add', '10.213.57.2/30', 'dev', `${tag}n`]);
  await must('ip', ['-n', name, 'link', 'set', `${tag}n`, 'up']);
  await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  const [hostAddress6, address6] = ['fd7e:57:1::1', 'fd7e:57:1::2'];
  if (options.ipv6) {
    // nodad: usable at once, where duplicate address detection would take a second.
    await must('ip', ['addr', 'add', `${hostAddress6}/64`, 'dev', hostSide, 'nodad']);
    await must('ip', ['-n', name, 'addr', 'add', `${address6}/64`, 'dev', `${tag}n`, 'nodad']);
    await must('ip', ['-n', name, '-6', 'route', 'add', 'default', 'via', hostAddress6]);
  }
  return { name, hostAddress, hostAddress6, address6, remove };
}

/** socat from the host, copied into the container's write layer before it starts (busybox has no UDP server). */
export function giveSocat(containerDir: string): void {
  copyFileSync('/usr/bin/socat', join(containerDir, 'wlayer/socat'));
}

/** Echo servers inside a running container: TCP on 80 answers `tcp-NAME`, UDP on 53 answers `udp-NAME`. */
export async function startServers(name: string): Promise<void> {
  await attach(
    name,
    `(/socat TCP4-LISTEN:80,fork,reuseaddr SYSTEM:"echo tcp-${name}" </dev/null >/dev/null 2>&1 &); ` +
      `(/socat UDP4-RECVFROM:53,fork SYSTEM:"echo udp-${name}" </dev/null >/dev/null 2>&1 &); ` +
      'for i in 1 2 3 4 5 6 7 8 9 10; do netstat -ltn | grep -q ":80 " && break; sleep 0.2; done',
  );
}

/**
 * What a client reads from HOST:PORT (TCP, or UDP with a datagram sent first); '' when nothing answers.
 * Up to `attempts` tries, 2 s each.
 */
export async function request(
  address: string,
  port: number,
  options: { udp?: boolean; namespace?: string; attempts?: number } = {},
): Promise<string> {
  const ipv6 = address.includes(':');
  const at = ipv6 ? `[${address}]:${port}` : `${address}:${port}`;
  const target = `${options.udp ? 'UDP' : 'TCP'}${ipv6 ? '6' : '4'}:${at}`;
  const command = ['socat', '-T2', '-', target];
  const argv = options.namespace ? ['ip', 'netns', 'exec', options.namespace, ...command] : command;
  for (let attempt = 0; attempt < (options.attempts ?? 3); attempt++) {
    const result = await execa(argv[0]!, argv.slice(1), { reject: false, timeout: 5_000, input: 'ping\n' });
    const answer = String(result.stdout).trim();
    if (answer !== '') return answer;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return '';
}

/** The addresses on the container's eth0, as `ip` inside it shows them. */
export async function containerAddresses(name: string): Promise<string[]> {
  const output = await attach(name, 'ip -4 -o addr show dev eth0');
  return [...output.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((match) => match[1]!);
}

/** Waits (bounded) until lxc-net's dnsmasq has leased to this MAC: the base's DHCP client has run. */
export async function waitForLease(bridge: string, mac: string, timeoutMs: number): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const leases = await sh('cat', [`/var/lib/misc/dnsmasq.${bridge}.leases`]);
    const line = leases.stdout.split('\n').find((entry) => entry.split(' ')[1] === mac);
    if (line) return line.split(' ')[2] ?? null;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return null;
}

/**
 * The nat and filter lines matching `pattern` once post-stop hooks have had their turn: LXC reports a
 * container STOPPED before it runs them, so this waits (up to `timeoutMs`) for the lines to go.
 */
export async function rulesLeftAfterStop(pattern: RegExp, timeoutMs = 15_000, save = 'iptables-save'): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = [...(await must(save, ['-t', 'nat'])).split('\n'), ...(await must(save, ['-t', 'filter'])).split('\n')];
    const left = lines.filter((line) => pattern.test(line));
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Lines of `iptables-save` that belong to a thin container's chains. */
export async function rulesOf(tag: string): Promise<string[]> {
  return (await must('iptables-save', [])).split('\n').filter((line) => line.includes(tag));
}

export interface BridgeHost {
  namespace: string;
  mac: string;
  /** Asks lxc-net's dnsmasq for a lease (busybox udhcpc) and configures the address it gets; returns it. */
  lease(): Promise<string>;
  remove(): Promise<void>;
}

/** Another machine plugged into the LXC bridge: a network namespace with a veth whose host end is a bridge port. */
export async function makeBridgeHost(tag: string, bridge = 'lxcbr0'): Promise<BridgeHost> {
  const namespace = `${tag}bh`;
  const port = `${tag}p`;
  const remove = async () => {
    await sh('ip', ['netns', 'del', namespace]);
    await sh('ip', ['link', 'del', port]);
  };
  await remove();
  await must('ip', ['netns', 'add', namespace]);
  await must('ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace]);
  await must('ip', ['link', 'set', port, 'master', bridge, 'up']);
  await must('ip', ['-n', namespace, 'link', 'set', 'eth0', 'up']);
  const mac = (await must('ip', ['netns', 'exec', namespace, 'cat', '/sys/class/net/eth0/address'])).trim();
  const lease = async () => {
    const script = join(mkdtempSync('/tmp/thin-lxc-udhcpc-'), 'script');
    writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && ip addr add "$ip/24" dev "$interface"\nexit 0\n', { mode: 0o755 });
    try {
      await must('ip', ['netns', 'exec', namespace, 'busybox', 'udhcpc', '-i', 'eth0', '-q', '-n', '-t', '5', '-s', script], 30_000);
    } finally {
      rmSync(dirname(script), { recursive: true, force: true });
    }
    const shown = await must('ip', ['-n', namespace, '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    const address = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(shown)?.[1];
    if (!address) throw new Error(`udhcpc in ${namespace} configured no address: ${shown}`);
    return address;
  };
  return { namespace, mac, lease, remove };
}

/** Waits (bounded) until dnsmasq's lease file no longer lists this MAC. */
export async function leaseGone(bridge: string, mac: string, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const leases = await sh('cat', [`/var/lib/misc/dnsmasq.${bridge}.leases`]);
    if (!leases.stdout.split('\n').some((entry) => entry.split(' ')[1] === mac)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** The IPv4 address lxc-net's dnsmasq gives for `name`, asked at the bridge's own address; '' when it has none. */
export async function resolveAtBridge(name: string, server = '10.0.3.1'): Promise<string> {
  const resolver = new Resolver({ timeout: 2_000, tries: 1 });
  resolver.setServers([server]);
  try {
    return (await resolver.resolve4(name))[0] ?? '';
  } catch {
    return '';
  }
}
