// What an lxcpath holds: the registrations that let plain LXC tools find thin containers, which
// containers run, and which own a MAC address.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { lxcStatuses, type LxcStatus } from '../core/commands.js';
import { removeTreeOnDevice, writeFileAtomic } from '../core/files.js';
import { parseLxcConfig } from './config.js';

/** A container's status in any lxcpath, asking LXC once per lxcpath: thin containers may be registered in several. */
export function lxcStatusLookup(): (lxcpath: string, name: string) => LxcStatus | undefined {
  const byLxcpath = new Map<string, Map<string, LxcStatus>>();
  return (lxcpath, name) => {
    let statuses = byLxcpath.get(lxcpath);
    if (!statuses) byLxcpath.set(lxcpath, (statuses = lxcStatuses(lxcpath)));
    return statuses.get(name);
  };
}

/** What `lxc-start -n NAME` reads: a config that includes the thin container's own. */
function registrationText(id: string, imageConfig: string): string {
  return [
    `# Registered by thin-lxc so that plain LXC tools find thin container ${id}.`,
    '# Remove it with thin-lxc destroy or lxc-destroy; both remove the container too.',
    `lxc.include = ${imageConfig}`,
    '',
  ].join('\n');
}

export function registrationDir(lxcpath: string, name: string): string {
  return join(lxcpath, name);
}

/**
 * Fails if any LXC container of that name exists, so no one else's container is overwritten. The config
 * appears whole or not at all: a create killed in between leaves a directory without one (see unregister).
 */
export function register(lxcpath: string, name: string, id: string, imageConfig: string): void {
  mkdirSync(lxcpath, { recursive: true });
  const dir = registrationDir(lxcpath, name);
  mkdirSync(dir); // throws EEXIST for a name already taken, even by a create running at the same moment
  writeFileAtomic(join(dir, 'config'), registrationText(id, imageConfig));
}

/** True when `lxcpath/name` is thin-lxc's registration of this very container, and nobody else's. */
export function isOurRegistration(lxcpath: string, name: string, imageConfig: string): boolean {
  try {
    const text = readFileSync(join(registrationDir(lxcpath, name), 'config'), 'utf8');
    return text.split('\n').some((line) => line.trim() === `lxc.include = ${imageConfig}`);
  } catch {
    return false;
  }
}

/**
 * A directory that only a create killed between `register`'s mkdir and its config's rename can have left: a real
 * directory, empty but for that config's temporary file. Anything else in it is someone else's.
 */
function isOurUnfinishedRegistration(dir: string): boolean {
  try {
    if (!lstatSync(dir).isDirectory()) return false;
    return readdirSync(dir).every((entry) => /^\.config\.tmp-\d+$/.test(entry));
  } catch {
    return false;
  }
}

/**
 * Removes the registration (and LXC's logs beside it) if it is ours, or if it is the empty directory a create
 * killed before it wrote the config left. Quietly does nothing otherwise: a directory of that name with files of
 * someone else's, and no config, is theirs.
 */
export function unregister(lxcpath: string, name: string, imageConfig: string): void {
  const dir = registrationDir(lxcpath, name);
  if (!existsSync(dir)) return;
  if (isOurRegistration(lxcpath, name, imageConfig) || isOurUnfinishedRegistration(dir)) {
    removeTreeOnDevice(dir, `the registration ${dir}`);
  }
}

export function lxcContainerExists(lxcpath: string, name: string): boolean {
  return existsSync(registrationDir(lxcpath, name));
}

/**
 * IPv4 addresses of running containers in `lxcpath`, so a new static address never takes a live one. Read from
 * /proc, not asked of LXC: lxc-ls answers only once a starting container's hooks are done, and those wait for
 * that container's lock, which the caller (create, under 'create' or a replaced container's lock) may hold or
 * wait behind. Each container's monitor ("[lxc monitor] LXCPATH NAME") has its init as a child, in the
 * container's network namespace, whose local addresses /proc/PID/net/fib_trie lists.
 */
export function runningAddresses(lxcpath: string): { address: string; holder: string }[] {
  const processes = readdirSafe('/proc').filter((entry) => /^\d+$/.test(entry));
  const monitors = new Map<string, string>();
  const parents = new Map<string, string>();
  for (const pid of processes) {
    const name = monitorName(readSafe(`/proc/${pid}/cmdline`), lxcpath);
    if (name !== null) monitors.set(pid, name);
    const stat = readSafe(`/proc/${pid}/stat`);
    const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
    if (ppid) parents.set(pid, ppid);
  }
  if (monitors.size === 0) return [];
  const hostNet = linkSafe('/proc/self/ns/net');
  const uses: { address: string; holder: string }[] = [];
  for (const [pid, ppid] of parents) {
    const name = monitors.get(ppid);
    if (name === undefined || linkSafe(`/proc/${pid}/ns/net`) === hostNet) continue;
    for (const address of localAddresses(readSafe(`/proc/${pid}/net/fib_trie`))) uses.push({ address, holder: `running container ${name}` });
  }
  return uses;
}

/** The container whose monitor has this command line, if it is one of `lxcpath`'s. */
export function monitorName(cmdline: string, lxcpath: string): string | null {
  const prefix = `[lxc monitor] ${lxcpath} `;
  if (!cmdline.startsWith(prefix)) return null;
  const name = cmdline.slice(prefix.length).split('\0')[0]!.trim();
  return name === '' ? null : name;
}

/** The IPv4 addresses a network namespace holds (its fib_trie's "/32 host LOCAL" entries), loopback left out. */
export function localAddresses(fibTrie: string): string[] {
  const found = new Set<string>();
  let last = '';
  for (const line of fibTrie.split('\n')) {
    const leaf = /\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line.trimEnd());
    if (leaf) last = leaf[1]!;
    else if (/^\s*\/32 host LOCAL/.test(line) && last !== '' && !last.startsWith('127.')) found.add(last);
  }
  return [...found];
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** A /proc file's text, or '' for a process gone meanwhile. */
function readSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function linkSafe(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

/**
 * Whether a container runs, without starting a process: a running container's monitor listens on the
 * abstract socket @LXCPATH/NAME/command, which /proc/net/unix lists.
 */
export function isRunning(lxcpath: string, name: string): boolean {
  return monitorSocket(lxcpath, name) !== null;
}

/**
 * The inode of that socket, one per start, or null when the container does not run: it exists from the start
 * of lxc-start, through its start hooks, until its stop, before the post-stop hooks. Unlike asking LXC
 * (lxc-info, lxc-ls), which waits until a start's hooks are done, reading it never waits: what a holder of a
 * container's lock uses, as those hooks may be waiting for that lock.
 */
export function monitorSocket(lxcpath: string, name: string): string | null {
  try {
    return listeningSocket(readFileSync('/proc/net/unix', 'utf8'), commandSocketName(lxcpath, name));
  } catch {
    return null;
  }
}

/**
 * The abstract socket a running container's monitor listens on, as /proc/net/unix shows it ('@' for the leading NUL):
 * LXCPATH/NAME/command, or, when that does not fit in a socket address (106 bytes with the NULs around it), LXC's
 * hashed name lxc/HASH/command, HASH the 64-bit FNV-1a of LXCPATH/NAME in 16 hex digits (LXC's commands_utils.c,
 * lxc_make_abstract_socket_name).
 */
export function commandSocketName(lxcpath: string, name: string): string {
  const plain = `${lxcpath}/${name}/command`;
  if (Buffer.byteLength(plain) < 106) return `@${plain}`;
  return `@lxc/${fnv1a64(Buffer.from(`${lxcpath}/${name}`)).toString(16).padStart(16, '0')}/command`;
}

function fnv1a64(bytes: Uint8Array): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return hash;
}

/**
 * The inode of the listening socket bound to `path` in /proc/net/unix's text, or null. Only the listening one
 * (flag __SO_ACCEPTCON, 00010000) is a monitor's: the monitor's end of a client's connection (lxc-stop waiting
 * for STOPPED) carries the same path, and stays open through the post-stop hooks after the listening one closed.
 */
export function listeningSocket(procNetUnix: string, path: string): string | null {
  for (const line of procNetUnix.split('\n')) {
    // Num: RefCount Protocol Flags Type St Inode Path (the path may hold spaces)
    const match = /^\s*\S+:\s+\S+\s+\S+\s+([0-9A-Fa-f]+)\s+\S+\s+\S+\s+(\d+)\s(.*)$/.exec(line);
    if (match && match[3] === path && (Number.parseInt(match[1]!, 16) & 0x10000) !== 0) return match[2]!;
  }
  return null;
}

/** LXC containers in `lxcpath` whose config gives a network device this MAC address. */
export function containersWithMac(lxcpath: string, mac: string): string[] {
  let names: string[];
  try {
    names = readdirSync(lxcpath);
  } catch {
    return [];
  }
  const wanted = mac.toLowerCase();
  return names.filter((name) => {
    try {
      const entries = parseLxcConfig(readFileSync(join(lxcpath, name, 'config'), 'utf8'));
      return entries.some((entry) => /^lxc\.net\.\d+\.hwaddr$/.test(entry.key) && entry.value.toLowerCase() === wanted);
    } catch {
      return false;
    }
  });
}

/** The containers in `lxcpath`, as lxc-ls -1 would name them (a directory with a config), without running it. */
export function lxcContainerNames(lxcpath: string): string[] {
  return readdirSafe(lxcpath)
    .filter((name) => !name.startsWith('.') && existsSync(join(lxcpath, name, 'config')))
    .sort();
}
