// Which host ports a container may publish: one that another thin container publishes is refused, and
// so is one a host process listens on (read from /proc/net, with its owner from /proc/PID/fd), since a
// DNAT rule answers before any local socket sees the packet.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { UserError } from '../core/errors.js';
import { formatIPv6, formatPublish, parsePublish, type Protocol, type Publish } from '../core/validate.js';

export interface Listener {
  protocol: Protocol;
  address: string;
  port: number;
  /** The socket's inode, to find the process that holds it. */
  inode: string;
}

/** TCP sockets in LISTEN (0A); UDP sockets bound and not connected (07, no remote port). */
export function parseProcNet(text: string, protocol: Protocol): Listener[] {
  const listeners: Listener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [local, remote, state, inode] = [fields[1], fields[2], fields[3], fields[9]];
    if (!local || !remote || !state || !inode) continue;
    const listening = protocol === 'tcp' ? state === '0A' : state === '07' && remote.endsWith(':0000');
    if (!listening) continue;
    const [hexAddress = '', hexPort = ''] = local.split(':');
    listeners.push({ protocol, address: addressFromProc(hexAddress), port: parseInt(hexPort, 16), inode });
  }
  return listeners;
}

/** /proc/net prints addresses as 32-bit words in the host's (little-endian) byte order. */
function addressFromProc(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((word) => (word.match(/../g) ?? []).reverse().map((byte) => parseInt(byte, 16)));
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.slice(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  return formatIPv6(bytes.reduce((value, byte) => (value << 8n) | BigInt(byte), 0n));
}

function hostListeners(): Listener[] {
  const read = (file: string) => {
    try {
      return readFileSync(`/proc/net/${file}`, 'utf8');
    } catch {
      return '';
    }
  };
  return [
    ...parseProcNet(read('tcp'), 'tcp'),
    ...parseProcNet(read('tcp6'), 'tcp'),
    ...parseProcNet(read('udp'), 'udp'),
    ...parseProcNet(read('udp6'), 'udp'),
  ];
}

/**
 * Whether publishing takes packets from the listener: thin-lxc's DNAT catches the port on every local
 * address (or on the one given), and a listener on IPv6's any-address takes IPv4 too.
 */
export function takesFrom(publish: Publish, listener: Listener): boolean {
  if (listener.protocol !== publish.protocol || listener.port < publish.host.first || listener.port > publish.host.last) return false;
  const address = listener.address.startsWith('::ffff:') ? listener.address.slice('::ffff:'.length) : listener.address;
  // A socket on :: takes both families unless it is IPV6_V6ONLY, which /proc/net does not show.
  if (address === '0.0.0.0' || address === '::') return address === '::' || publish.family !== 6;
  // Neither family's forwarding reaches [::1]: the IPv6 rules leave it alone (see forward/rules.ts).
  if (address === '::1') return false;
  const family = address.includes(':') ? 6 : 4;
  if (publish.family !== null && publish.family !== family) return false;
  return publish.hostIp === null || publish.hostIp === address;
}

/** The processes holding these sockets, as "sshd (pid 612)": one pass over /proc/PID/fd. */
function socketOwners(inodes: ReadonlySet<string>): Map<string, string> {
  const owners = new Map<string, string>();
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
        if (inode && inodes.has(inode) && !owners.has(inode)) owners.set(inode, `${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()} (pid ${pid})`);
      } catch {
        // The process or descriptor went away meanwhile.
      }
    }
  }
  return owners;
}

export interface PortClash {
  publish: string;
  listener: Listener;
  owner: string;
}

/** Published ports that host processes listen on, each with who listens. */
export function portClashes(publishes: readonly Publish[], listeners?: readonly Listener[]): PortClash[] {
  if (publishes.length === 0) return [];
  const all = listeners ?? hostListeners();
  const clashes = publishes.flatMap((publish) => all.filter((listener) => takesFrom(publish, listener)).map((listener) => ({ publish, listener })));
  if (clashes.length === 0) return [];
  const owners = socketOwners(new Set(clashes.map((clash) => clash.listener.inode)));
  return clashes.map(({ publish, listener }) => ({
    publish: formatPublish(publish),
    listener,
    owner: owners.get(listener.inode) ?? `a socket of another namespace or the kernel (inode ${listener.inode})`,
  }));
}

export function describeClash(clash: PortClash): string {
  const { listener } = clash;
  const at = listener.address.includes(':') ? `[${listener.address}]:${listener.port}` : `${listener.address}:${listener.port}`;
  return `host port ${listener.port}/${listener.protocol} (of ${clash.publish}) is in use by ${clash.owner}, listening on ${at}`;
}

/** A host port can be published by one thin container only (per protocol and host address). */
export function checkPublishConflicts(publishes: readonly Publish[], others: readonly { name: string; publish: readonly string[] }[]): void {
  const overlaps = (a: Publish, b: Publish) =>
    a.protocol === b.protocol &&
    (a.family === null || b.family === null || a.family === b.family) &&
    (a.hostIp === null || b.hostIp === null || a.hostIp === b.hostIp) &&
    a.host.first <= b.host.last &&
    b.host.first <= a.host.last;
  for (const [index, wanted] of publishes.entries()) {
    const twin = publishes.slice(0, index).find((earlier) => overlaps(earlier, wanted));
    if (twin) throw new UserError(`publish ${formatPublish(wanted)} overlaps ${formatPublish(twin)} in the same command: publish each host port once`);
    for (const other of others) {
      const taken = other.publish.map(parsePublish).find((theirs) => overlaps(theirs, wanted));
      if (taken) {
        throw new UserError(`host port of ${formatPublish(wanted)} is already published by thin container ${other.name} (${formatPublish(taken)}): choose another host port`);
      }
    }
  }
}
