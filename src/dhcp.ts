// Address reservations in lxc-net's dnsmasq: one dhcp-host file per thin container, so that a base whose
// init runs DHCP (busybox udhcpc, Debian ifupdown, systemd-networkd...) gets exactly the chosen address.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressUse } from './address.js';
import { writeFileAtomic } from './atomic-file.js';
import { run } from './exec.js';
import { isAlive } from './pid.js';

/** dnsmasq watches this directory (dhcp-hostsdir) and reads new files without a restart. */
export const HOSTS_DIR = '/var/lib/thin-lxc/dhcp-hosts';
export const DNSMASQ_PID_FILE = '/run/lxc/dnsmasq.pid';

export function reservationLine(mac: string, address: string): string {
  return `${mac},${address}\n`;
}

export function reserve(name: string, mac: string, address: string): void {
  mkdirSync(HOSTS_DIR, { recursive: true, mode: 0o755 });
  writeFileAtomic(join(HOSTS_DIR, name), reservationLine(mac, address));
}

/** dnsmasq forgets a removed file only on SIGHUP; quiet when nothing is there or dnsmasq is not running. */
export function release(name: string): void {
  const path = join(HOSTS_DIR, name);
  if (!existsSync(path)) return;
  rmSync(path, { force: true });
  signalDnsmasq();
}

/**
 * Ends the container's DHCP lease too (dhcp_release, from dnsmasq-utils, when installed): leases outlive
 * their containers for an hour, and a subnet full of them leaves nothing to choose from quickly.
 */
export function releaseLease(bridge: string | null, address: string | null, mac: string | undefined): void {
  if (!bridge || !address || !mac) return;
  try {
    run('dhcp_release', [bridge, address, mac], { allowFailure: true });
  } catch {
    // Without dnsmasq-utils the lease simply expires.
  }
}

/** Releases the reservation only if it is still this MAC's: a newer container of the same name keeps its own. */
export function releaseIfOwned(name: string, mac: string | undefined): void {
  const path = join(HOSTS_DIR, name);
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
export function reservedAddresses(known: ReadonlySet<string> = new Set()): AddressUse[] {
  let files: string[];
  try {
    files = readdirSync(HOSTS_DIR);
  } catch {
    return [];
  }
  return files.flatMap((file) => {
    if (file.includes('.tmp-') || known.has(file)) return [];
    const address = readFileSync(join(HOSTS_DIR, file), 'utf8').trim().split(',')[1];
    return address ? [{ address, holder: `thin container ${file} (reserved in ${HOSTS_DIR})` }] : [];
  });
}

/** Addresses lxc-net's dnsmasq has leased: a stopped container asks for its lease again when it starts. */
export function leasedAddresses(bridge: string): AddressUse[] {
  let text: string;
  try {
    text = readFileSync(`/var/lib/misc/dnsmasq.${bridge}.leases`, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields.length >= 3 && fields[2])
    .map((fields) => ({ address: fields[2]!, holder: `a DHCP lease of ${fields[1]} (${fields[3] ?? '?'})` }));
}

/** Addresses the host has recently talked to on the bridge (its ARP table): live, whoever configured them. */
export function neighbourAddresses(bridge: string): AddressUse[] {
  let text: string;
  try {
    text = readFileSync('/proc/net/arp', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[5] === bridge && fields[2] !== '0x0')
    .map((fields) => ({ address: fields[0]!, holder: `a live host on ${bridge} (${fields[3]})` }));
}

export function dnsmasqPid(): number | null {
  try {
    const pid = Number(readFileSync(DNSMASQ_PID_FILE, 'utf8').trim());
    return isAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** True when the running lxc-net dnsmasq reads thin-lxc's reservations (thin-lxc setup arranges that). */
export function dnsmasqReadsReservations(pid = dnsmasqPid()): boolean {
  if (pid === null) return false;
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (args.includes(`--dhcp-hostsdir=${HOSTS_DIR}`)) return true;
  const confFile = args.find((arg) => arg.startsWith('--conf-file='))?.slice('--conf-file='.length);
  return confFile !== undefined && confFileReadsReservations(confFile);
}

export function confFileReadsReservations(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').split('\n').some((line) => line.trim() === `dhcp-hostsdir=${HOSTS_DIR}`);
  } catch {
    return false;
  }
}

function signalDnsmasq(): void {
  const pid = dnsmasqPid();
  if (pid === null) return;
  try {
    process.kill(pid, 'SIGHUP');
  } catch {
    // Gone meanwhile: it will read the directory afresh when it starts.
  }
}
