// Reading LXC config text (lxc.container.conf(5)): `key = value` lines, '#' comments.

export interface ConfigEntry {
  key: string;
  value: string;
}

/** Parses the meaningful lines; LXC strips one pair of matching quotes around a value, and so do we. */
export function parseLxcConfig(text: string): ConfigEntry[] {
  const entries: ConfigEntry[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const equals = line.indexOf('=');
    if (equals < 0) continue;
    entries.push({ key: line.slice(0, equals).trim(), value: unquote(line.slice(equals + 1).trim()) });
  }
  return entries;
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
