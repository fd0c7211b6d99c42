// LXC config text (lxc.container.conf(5)): reading `key = value` lines, and the lxc.mount.entry lines
// thin-lxc writes for bind mounts of host files and folders.
import { readFileSync, statSync } from 'node:fs';
import { UserError } from '../core/errors.js';
import { type BindMount, formatMount, parseMount, quote } from '../core/validate.js';

export interface ConfigEntry {
  key: string;
  value: string;
}

/** Parses the meaningful lines; LXC strips one pair of matching quotes around a value, and so do we. */
export function parseLxcConfig(text: string): ConfigEntry[] {
  return text.split('\n').flatMap((line) => entryOf(line) ?? []);
}

/** The entry one config line sets; null for a blank line, a comment or anything else. */
function entryOf(rawLine: string): ConfigEntry | null {
  const line = rawLine.trim();
  if (line === '' || line.startsWith('#')) return null;
  const equals = line.indexOf('=');
  if (equals < 0) return null;
  return { key: line.slice(0, equals).trim(), value: unquote(line.slice(equals + 1).trim()) };
}

/**
 * The config with the entries `drop` selects taken out and `add` put where the first of them was (or at the
 * end, under `heading`), everything else as it was, whatever template made it.
 */
export function replaceEntries(config: string, drop: (entry: ConfigEntry) => boolean, add: readonly ConfigEntry[], heading: string): string {
  let placed = false;
  const edited = config.split('\n').flatMap((line) => {
    const entry = entryOf(line);
    if (!entry || !drop(entry)) return [line];
    if (placed) return [];
    placed = true;
    return add.map(formatEntry);
  });
  // The heading an earlier edit wrote goes with the last of its entries.
  const lines = edited.filter((line, index) => line !== `# ${heading}` || (edited[index + 1] ?? '').trim() !== '');
  // Blank lines that framed what went collapse into one.
  if (placed || add.length === 0) return lines.join('\n').replace(/\n{3,}/g, '\n\n').replace(/\n+$/, '\n');
  return `${lines.join('\n').replace(/\n*$/, '\n')}\n# ${heading}\n${add.map(formatEntry).join('\n')}\n`;
}

function unquote(value: string): string {
  const first = value[0];
  if (value.length > 1 && (first === '"' || first === "'") && value.endsWith(first)) return value.slice(1, -1);
  return value;
}

/** LXC keeps the last value of a single-valued key. */
export function lastValue(entries: readonly ConfigEntry[], key: string): string | undefined {
  return entries.findLast((entry) => entry.key === key)?.value;
}

/** The bridge LXC's default config (/etc/lxc/default.conf) puts new containers on; lxcbr0 when it names none. */
export function defaultBridge(): string {
  let text = '';
  try {
    text = readFileSync('/etc/lxc/default.conf', 'utf8');
  } catch {
    // No default config: LXC's packaged one uses lxc-net's bridge.
  }
  return lastValue(parseLxcConfig(text), 'lxc.net.0.link') ?? 'lxcbr0';
}

export function formatEntry(entry: ConfigEntry): string {
  return `${entry.key} = ${entry.value}`;
}

/** Indexes of the network devices that get a MAC address (`lxc.net.N.type` other than none/empty). */
export function networkIndexes(entries: readonly ConfigEntry[]): number[] {
  const types = new Map<number, string>();
  for (const { key, value } of entries) {
    const match = /^lxc\.net\.(\d+)\.type$/.exec(key);
    if (match) types.set(Number(match[1]), value);
  }
  return [...types]
    .filter(([, type]) => type !== 'none' && type !== 'empty')
    .map(([index]) => index)
    .sort((a, b) => a - b);
}

export interface MountEntry {
  /** Host path, fstab-escaped. */
  source: string;
  /** Container path relative to the rootfs, fstab-escaped. */
  target: string;
  /**
   * bind, create=dir|file so LXC makes the mount point (in the write layer, never the base), and ro. Never
   * idmap=container: LXC makes the mount in the container's own mount namespace, where root inside may remount it
   * read-write, and through the map it would then write as host root.
   */
  options: string;
}

/** LXC reads mount entries like fstab lines: white space and backslashes are written as octal escapes. */
function fstabEscape(path: string): string {
  return path.replace(/[\\ \t]/g, (char) => `\\${char.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** The lxc.mount.entry value of a bind mount, as templates/config.hbs writes it. */
export function mountEntryValue(entry: MountEntry): string {
  return `${entry.source} ${entry.target} none ${entry.options} 0 0`;
}

/** Whether an lxc.mount.entry value mounts `mount` (whatever its options). */
export function mountsBind(value: string, mount: BindMount): boolean {
  const [source, target] = value.split(/\s+/);
  return source === fstabEscape(mount.host) && target === fstabEscape(mount.container.slice(1));
}

export function mountEntry(mount: BindMount, isDirectory: boolean): MountEntry {
  const options = ['bind', `create=${isDirectory ? 'dir' : 'file'}`, ...(mount.readOnly ? ['ro'] : [])].join(',');
  return { source: fstabEscape(mount.host), target: fstabEscape(mount.container.slice(1)), options };
}

/** Parses and checks `-m` values: the host path must exist; the container path cannot be the root. */
export function planMounts(specs: readonly string[], cwd: string): { mounts: BindMount[]; entries: MountEntry[] } {
  const mounts = specs.map((spec) => parseMount(spec, cwd));
  const entries = mounts.map((mount) => {
    if (mount.container === '/') throw new UserError(`mount ${quote(formatMount(mount))}: cannot mount over the container's root; choose a path like /app`);
    let isDirectory: boolean;
    try {
      isDirectory = statSync(mount.host).isDirectory();
    } catch {
      throw new UserError(`mount ${quote(formatMount(mount))}: host path ${mount.host} does not exist; create it first`);
    }
    return mountEntry(mount, isDirectory);
  });
  return { mounts, entries };
}
