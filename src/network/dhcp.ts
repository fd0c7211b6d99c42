// lxc-net's dnsmasq: thin containers' address reservations (one dhcp-host file each, so that a base whose
// init runs DHCP gets exactly the chosen address), its leases and ending them, and whether it runs.
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../core/exec.js';
import { removeStaleTemporaries, writeFileAtomic } from '../core/files.js';

/** An address and who holds it, for messages: "thin container web1", "a DHCP lease of ...". */
export interface Holding {
  address: string;
  holder: string;
}

/** dnsmasq watches this directory (dhcp-hostsdir) and reads new files without a restart. */
export const HOSTS_DIR = '/var/lib/thin-lxc/dhcp-hosts';
/**
 * The containers' names as hosts files (hostsdir), also watched: dnsmasq answers DNS for a dhcp-host's name
 * only while its client holds a lease, and a base whose init never asks for one would have no name.
 */
export const NAMES_DIR = '/var/lib/thin-lxc/hosts';
export const DNSMASQ_PID_FILE = '/run/lxc/dnsmasq.pid';

/** A DNS label: a name with '_' or '.' goes without one (its address is still reserved). */
function dnsName(name: string): string | null {
  return /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(name) ? name : null;
}

export function reservationLine(mac: string, address: string, name: string): string {
  const host = dnsName(name);
  return host ? `${mac},${address},${host}\n` : `${mac},${address}\n`;
}

/** The address for the MAC, and the container's name for DHCP and DNS alike (A, and AAAA with `address6`). */
export function reserve(name: string, mac: string, address: string, address6: string | null = null): void {
  mkdirSync(HOSTS_DIR, { recursive: true, mode: 0o755 });
  writeFileAtomic(join(HOSTS_DIR, name), reservationLine(mac, address, name));
  const host = dnsName(name);
  if (host) {
    mkdirSync(NAMES_DIR, { recursive: true, mode: 0o755 });
    writeFileAtomic(join(NAMES_DIR, name), `${address} ${host}\n${address6 ? `${address6} ${host}\n` : ''}`);
  }
}

/** dnsmasq forgets a removed file only on SIGHUP; quiet when nothing is there or dnsmasq is not running. */
export function release(name: string): void {
  const path = join(HOSTS_DIR, name);
  const names = join(NAMES_DIR, name);
  if (!existsSync(path) && !existsSync(names)) return;
  rmSync(path, { force: true });
  rmSync(names, { force: true });
  signalDnsmasq();
}

/**
 * A DHCPRELEASE (RFC 2131) from `mac` for `address`, addressed to the DHCP server `server`: what a client
 * sends when it gives its address up, and what dnsmasq-utils' dhcp_release sends on its behalf.
 */
export function dhcpReleasePacket(address: string, mac: string, server: string, xid: number): Buffer {
  const packet = Buffer.alloc(300);
  packet[0] = 1; // BOOTREQUEST
  packet[1] = 1; // Ethernet
  packet[2] = 6; // its address length
  packet.writeUInt32BE(xid >>> 0, 4);
  octets(address).forEach((byte, index) => (packet[12 + index] = byte)); // ciaddr: the address given up
  mac.split(':').forEach((byte, index) => (packet[28 + index] = parseInt(byte, 16))); // chaddr
  packet.writeUInt32BE(0x63825363, 236); // the DHCP magic cookie
  // Option 53 (message type) = 7 (DHCPRELEASE); 54 (server identifier); 255 (end).
  Buffer.from([53, 1, 7, 54, 4, ...octets(server), 255]).copy(packet, 240);
  return packet;
}

function octets(address: string): number[] {
  return address.split('.').map(Number);
}

/**
 * Ends dnsmasq's lease of `address` to `mac`, so that the address can go to another MAC at once instead of
 * after the lease time (an hour on lxc-net). Sent to the bridge's own address, which the kernel delivers to
 * dnsmasq as arriving on the bridge. Needs no dnsmasq-utils. Resolves once the datagram is sent; a caller
 * that need not wait can let it go, since the process does not exit before it is sent.
 */
export function releaseLease(server: string, address: string, mac: string): Promise<void> {
  // The transaction id only pairs requests with replies, and a release has none.
  const packet = dhcpReleasePacket(address, mac, server, Date.now() ^ process.pid);
  return sendDatagram(packet, server, 67);
}

/** Whether dnsmasq's lease file still lists `address` for `mac`, waiting (bounded) for it to go. */
export async function leaseEnds(bridge: string, address: string, mac: string, timeoutMs = 1_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (leaseOf(bridge, address)?.mac !== mac) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Who dnsmasq has leased `address` to, from its lease file (`EXPIRY MAC ADDRESS HOSTNAME CLIENT-ID` lines). */
export function leaseOf(bridge: string, address: string): { mac: string } | null {
  const fields = leaseLines(bridge).find((line) => line[2] === address);
  return fields?.[1] ? { mac: fields[1] } : null;
}

function leaseLines(bridge: string): string[][] {
  try {
    return readFileSync(`/var/lib/misc/dnsmasq.${bridge}.leases`, 'utf8').split('\n').map((line) => line.split(' '));
  } catch {
    return [];
  }
}

/** One UDP datagram, sent before the promise resolves. */
export function sendDatagram(data: Buffer, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', (error) => {
      socket.close();
      reject(error);
    });
    socket.send(data, port, address, (error) => {
      socket.close();
      if (error) reject(error);
      else resolve();
    });
  });
}

/**
 * Releases the reservation only if it is still this MAC's: a newer container of the same name keeps its
 * own. What a create killed while reserving left beside it goes too.
 */
export function releaseIfOwned(name: string, mac: string | undefined): void {
  const path = join(HOSTS_DIR, name);
  removeStaleTemporaries(path);
  let line: string;
  try {
    line = readFileSync(path, 'utf8');
  } catch {
    return;
  }
  if (mac !== undefined && line.startsWith(`${mac},`)) release(name);
}

export function reservationExists(name: string): boolean {
  return existsSync(join(HOSTS_DIR, name));
}

/**
 * Reserved addresses of thin containers, one file per container name. `known` names are containers
 * whose address the caller already has (this root's, from their state): their files are not read,
 * so that a create on a host of one root reads no file per container.
 */
export function reservedAddresses(known: ReadonlySet<string> = new Set()): Holding[] {
  let files: string[];
  try {
    files = readdirSync(HOSTS_DIR);
  } catch {
    return [];
  }
  return files.flatMap((file) => {
    // dnsmasq skips dotfiles, thin-lxc's half-written reservations among them.
    if (file.startsWith('.') || known.has(file)) return [];
    const address = readFileSync(join(HOSTS_DIR, file), 'utf8').trim().split(',')[1];
    return address ? [{ address, holder: `thin container ${file} (reserved in ${HOSTS_DIR})` }] : [];
  });
}

/** Addresses lxc-net's dnsmasq has leased: a stopped container asks for its lease again when it starts. */
export function leasedAddresses(bridge: string): Holding[] {
  return leaseLines(bridge)
    .filter((fields) => fields.length >= 3 && fields[2])
    .map((fields) => ({ address: fields[2]!, holder: `a DHCP lease of ${fields[1]} (${fields[3] ?? '?'})` }));
}

/**
 * The pid of the dnsmasq lxc-net started, if it runs: the pid file outlives a dnsmasq that died, and its pid may
 * since name another process, which must never be sent dnsmasq's signals.
 */
export function dnsmasqPid(pidFile = DNSMASQ_PID_FILE): number | null {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return isAlive(pid) && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'dnsmasq' ? pid : null;
  } catch {
    return null;
  }
}

/** True when the running lxc-net dnsmasq reads thin-lxc's reservations (thin-lxc setup arranges that). */
export function dnsmasqReadsReservations(pid = dnsmasqPid()): boolean {
  if (pid === null) return false;
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (DNSMASQ_LINES.every((line) => args.includes(`--${line}`))) return true;
  const confFile = args.find((arg) => arg.startsWith('--conf-file='))?.slice('--conf-file='.length);
  return confFile !== undefined && confFileReadsReservations(confFile);
}

/** The dnsmasq options thin-lxc needs: the reservations, and the names. */
export const DNSMASQ_LINES = [`dhcp-hostsdir=${HOSTS_DIR}`, `hostsdir=${NAMES_DIR}`];

function confFileReadsReservations(path: string): boolean {
  return missingDnsmasqLines(path).length === 0;
}

export function missingDnsmasqLines(path: string, wanted: readonly string[] = DNSMASQ_LINES): string[] {
  let lines: string[];
  try {
    lines = readFileSync(path, 'utf8').split('\n').map((line) => line.trim());
  } catch {
    lines = [];
  }
  return wanted.filter((line) => !lines.includes(line));
}

export function signalDnsmasq(pidFile = DNSMASQ_PID_FILE): void {
  const pid = dnsmasqPid(pidFile);
  if (pid === null) return;
  try {
    process.kill(pid, 'SIGHUP');
  } catch {
    // Gone meanwhile: it will read the directory afresh when it starts.
  }
}
