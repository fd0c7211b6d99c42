// Checks every value before it can reach an LXC config, a mount option or a command line.
import { isAbsolute, normalize, resolve } from 'node:path';
import { UserError } from './errors.js';

/** Shown in messages so that a newline or a control character is visible, not acted on. */
export function quote(value: string): string {
  return JSON.stringify(value);
}

// A container name is also its hostname (lxc.uts.name), so it keeps to hostname characters,
// plus '_' which LXC names commonly use; 63 is the kernel's hostname limit.
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function validateName(value: string, field: 'name' | 'id' | 'base'): string {
  if (!NAME_PATTERN.test(value) || value.includes('..')) {
    const what = value === '' ? 'is empty' : `${quote(value)} is not allowed`;
    throw new UserError(
      `${field} ${what}: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return value;
}

// Paths that end up in hook command lines (run by LXC through sh) and in overlayfs options
// (where ',' and ':' separate fields) keep to characters that need no quoting anywhere.
const PLAIN_PATH = /^\/[A-Za-z0-9._+@/-]*$/;

export function validatePlainPath(value: string, what: string, fix: string): string {
  if (!PLAIN_PATH.test(value) || value.split('/').includes('..')) {
    throw new UserError(
      `${what} ${quote(value)} has characters LXC hooks and mount options cannot take ` +
        `(only letters, digits and ._+@-/ are allowed): ${fix}`,
    );
  }
  return normalize(value);
}

export function validateIPv4(value: string): string {
  const parts = value.split('.');
  const valid =
    parts.length === 4 && parts.every((part) => /^(0|[1-9][0-9]{0,2})$/.test(part) && Number(part) <= 255);
  if (!valid) throw new UserError(`ip ${quote(value)} is not an IPv4 address: write it like 10.0.3.67`);
  return value;
}

/** An IPv6 address as a 128-bit number, or null when the text is not one (no zone, no prefix). */
export function parseIPv6(text: string): bigint | null {
  if (!/^[0-9A-Fa-f:.]{2,45}$/.test(text)) return null;
  let head = text;
  let tail: number[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    // An IPv4 suffix (::ffff:10.0.3.1) is its last two groups.
    const v4 = dotted[2]!.split('.').map(Number);
    if (v4.some((byte) => !(byte <= 255)) || !isDecimalQuad(dotted[2]!)) return null;
    head = dotted[1]!.endsWith('::') ? dotted[1]! : dotted[1]!.slice(0, -1);
    tail = [v4[0]! * 256 + v4[1]!, v4[2]! * 256 + v4[3]!];
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  if ([...left, ...right].some((group) => !/^[0-9A-Fa-f]{1,4}$/.test(group))) return null;
  const given = left.length + right.length + tail.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return null;
  const words = [...left.map((g) => parseInt(g, 16)), ...Array(8 - given).fill(0), ...right.map((g) => parseInt(g, 16)), ...tail];
  return words.reduce((value: bigint, word: number) => (value << 16n) | BigInt(word), 0n);
}

function isDecimalQuad(text: string): boolean {
  return text.split('.').every((part) => /^(0|[1-9][0-9]{0,2})$/.test(part));
}

/** RFC 5952's canonical text: lower case, no leading zeros, the longest run of two or more zero groups as ::. */
export function formatIPv6(value: bigint): string {
  const words = Array.from({ length: 8 }, (_, index) => Number((value >> BigInt(16 * (7 - index))) & 0xffffn));
  let best = { at: -1, length: 1 };
  for (let at = 0; at < 8; ) {
    let end = at;
    while (end < 8 && words[end] === 0) end++;
    if (end - at > best.length) best = { at, length: end - at };
    at = end === at ? at + 1 : end;
  }
  const hex = words.map((word) => word.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.length).join(':')}`;
}

export function validateIPv6(value: string, what = 'ip6'): string {
  const parsed = parseIPv6(value);
  if (parsed === null) throw new UserError(`${what} ${quote(value)} is not an IPv6 address: write it like fd42:7a3b:1c00::43`);
  return formatIPv6(parsed);
}

export type Protocol = 'tcp' | 'udp';

export interface PortRange {
  first: number;
  last: number;
}

export type Family = 4 | 6;

export interface Publish {
  /** One host address to publish on; null for all of the families'. */
  hostIp: string | null;
  /** The one family it is published on (an address, 0.0.0.0 or [::] says which); null for both. */
  family: Family | null;
  host: PortRange;
  container: PortRange;
  protocol: Protocol;
}

const PUBLISH_PATTERN = /^(?:(\d+\.\d+\.\d+\.\d+|\[[^\]]*\]):)?([^:/]+):([^:/]+)(?:\/(tcp|udp))?$/;

/**
 * `[HOST_IP:]HOST_PORT[-END]:CONT_PORT[-END][/tcp|/udp]`, the original's `-p 3000:3010`. Without HOST_IP a
 * port is published on both families; `0.0.0.0:` and `[::]:` keep it to one, an address to that address.
 */
export function parsePublish(spec: string): Publish {
  const match = PUBLISH_PATTERN.exec(spec);
  const fix = 'write it as [HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|/udp], e.g. 3000:3010 or [2001:db8::1]:3000:3010';
  if (!match) throw new UserError(`publish ${quote(spec)} is malformed: ${fix}`);
  const [, address, hostPart = '', containerPart = '', protocol = 'tcp'] = match;
  const host = parsePortRange(hostPart, spec);
  const container = parsePortRange(containerPart, spec);
  if (host.last - host.first !== container.last - container.first) {
    throw new UserError(`publish ${quote(spec)} maps ranges of different lengths: make both ranges the same size`);
  }
  return { ...publishedOn(address, spec), host, container, protocol: protocol as Protocol };
}

function publishedOn(address: string | undefined, spec: string): { hostIp: string | null; family: Family | null } {
  if (address === undefined) return { hostIp: null, family: null };
  if (!address.startsWith('[')) return address === '0.0.0.0' ? { hostIp: null, family: 4 } : { hostIp: validateIPv4(address), family: 4 };
  const v6 = validateIPv6(address.slice(1, -1), `publish ${quote(spec)}: host address`);
  if (v6 === '::') return { hostIp: null, family: 6 };
  if (v6 === '::1') {
    // Measured: a DNAT from ::1 to a container's address is dropped by the kernel, whatever SNAT follows.
    throw new UserError(
      `publish ${quote(spec)}: the kernel cannot forward IPv6's loopback [::1] to another host (IPv6 has no route_localnet): ` +
        'publish on 127.0.0.1 instead, or on the host\'s own IPv6 address',
    );
  }
  return { hostIp: v6, family: 6 };
}

function parsePortRange(text: string, spec: string): PortRange {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const first = Number(match?.[1]);
  const last = match?.[2] === undefined ? first : Number(match[2]);
  if (!match || !isPort(first) || !isPort(last)) {
    throw new UserError(`publish ${quote(spec)}: ${quote(text)} is not a port: use a number from 1 to 65535`);
  }
  if (last < first) throw new UserError(`publish ${quote(spec)}: range ${text} is reversed: write it low-high`);
  return { first, last };
}

function isPort(value: number): boolean {
  return Number.isInteger(value) && value >= 1 && value <= 65535;
}

export function formatPublish(publish: Publish): string {
  const range = ({ first, last }: PortRange) => (first === last ? `${first}` : `${first}-${last}`);
  const address = publish.hostIp ?? (publish.family === 4 ? '0.0.0.0' : publish.family === 6 ? '::' : null);
  const hostIp = address === null ? '' : address.includes(':') ? `[${address}]:` : `${address}:`;
  return `${hostIp}${range(publish.host)}:${range(publish.container)}/${publish.protocol}`;
}

export interface BindMount {
  host: string;
  container: string;
  readOnly: boolean;
}

/** `HOST:CONTAINER[:ro]`, the original's `-m /app/myApp:/app`; a relative host path is taken from `cwd`. */
export function parseMount(spec: string, cwd: string): BindMount {
  const fix = 'write it as HOST_PATH:CONTAINER_PATH[:ro], e.g. /srv/app:/app';
  if (hasControl(spec)) throw new UserError(`mount ${quote(spec)} contains a control character: ${fix}`);
  const parts = spec.split(':');
  const readOnly = parts.length === 3 && parts[2] === 'ro';
  if (parts.length !== 2 && !readOnly) throw new UserError(`mount ${quote(spec)} is malformed: ${fix}`);
  const [host = '', container = ''] = parts;
  if (host === '' || container === '') throw new UserError(`mount ${quote(spec)} has an empty side: ${fix}`);
  if (!isAbsolute(container)) {
    throw new UserError(`mount ${quote(spec)}: the container path ${quote(container)} must be absolute, e.g. /app`);
  }
  if (container.split('/').includes('..')) {
    throw new UserError(`mount ${quote(spec)}: the container path ${quote(container)} must not contain '..'`);
  }
  return { host: resolve(cwd, host), container: normalize(container).replace(/(.)\/$/, '$1'), readOnly };
}

export function formatMount(mount: BindMount): string {
  return `${mount.host}:${mount.container}${mount.readOnly ? ':ro' : ''}`;
}

export function hasControl(value: string): boolean {
  return /[\u0000-\u001f\u007f]/.test(value);
}

/** Split repeatable, comma-separated option values (`-p 80:80,443:443 -p 53:53/udp`). */
export function splitList(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap((value) => value.split(',')).filter((value) => value !== '');
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** `512M`, `1.5G`, `268435456`: binary units, as Docker, LXC and the kernel read them; in bytes. */
export function parseSize(value: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)([kmgt]?)(?:i?b)?$/i.exec(value);
  const bytes = match ? Math.floor(Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]!) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new UserError(`${what} ${quote(value)} is not a size: write it like 512M or 2G`);
  }
  return bytes;
}

/** A memory limit below this cannot even start an init; Docker's floor is 6 MiB. */
const MIN_MEMORY = 8 * 2 ** 20;

export function validateMemory(value: string): string {
  const bytes = parseSize(value, 'memory');
  if (bytes < MIN_MEMORY) throw new UserError(`memory ${quote(value)} is too small to run a container: give at least 8M`);
  return String(bytes);
}

/** Docker's --cpus: a share of CPU time in CPUs (1.5 = one and a half), at most the host's CPUs. */
export function validateCpus(value: string, hostCpus: number): string {
  const cpus = /^\d+(\.\d{1,2})?$/.test(value) ? Number(value) : NaN;
  if (!(cpus >= 0.01 && cpus <= hostCpus)) {
    throw new UserError(`cpus ${quote(value)} is not a CPU count this host has: give a number from 0.01 to ${hostCpus}, e.g. 1.5`);
  }
  return String(cpus);
}

/** tmpfs takes a size in bytes with k, m or g, or a share of RAM (`50%`, its default). */
export function validateTmpfsSize(value: string): string {
  if (/^([1-9]\d?|100)%$/.test(value)) return value;
  return String(parseSize(value, 'tmpfs size'));
}

/** The smallest --disk: ext4's own metadata (journal, inode tables) takes a few MiB of a small image. */
const MIN_DISK = 16 * 2 ** 20;

/** --disk SIZE: bytes the write layer may use. */
export function validateDisk(value: string): string {
  const bytes = parseSize(value, 'disk');
  if (bytes < MIN_DISK) throw new UserError(`disk ${quote(value)} is too small for a write layer: give at least 16M`);
  return String(bytes);
}
