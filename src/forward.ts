// Port forwarding as data: the iptables rules of one thin container, and the iptables-restore script that
// installs or removes them while keeping every other container's rules as they are.
import { createHash } from 'node:crypto';
import { UserError } from './errors.js';
import { formatPublish, parsePublish, type Publish } from './validate.js';

/**
 * Shared chains, jumped to from the built-in ones. Each thin container has its own chains, named
 * from a hash of its directory (iptables chain names are limited to 28 characters).
 */
export const CHAINS = {
  dnat: 'THIN-LXC-DNAT',
  snat: 'THIN-LXC-SNAT',
  forward: 'THIN-LXC-FWD',
  guard: 'THIN-LXC-GUARD',
} as const;

const BASE_JUMPS = {
  nat: [
    { chain: 'PREROUTING', spec: `-m addrtype --dst-type LOCAL -j ${CHAINS.dnat}`, insert: false },
    { chain: 'OUTPUT', spec: `-m addrtype --dst-type LOCAL -j ${CHAINS.dnat}`, insert: false },
    { chain: 'POSTROUTING', spec: `-j ${CHAINS.snat}`, insert: true },
  ],
  filter: [{ chain: 'FORWARD', spec: `-j ${CHAINS.forward}`, insert: true }],
  // With route_localnet on the bridge, nothing but the host itself may send to 127.0.0.0/8 (CVE-2020-8558).
  raw: [{ chain: 'PREROUTING', spec: `-j ${CHAINS.guard}`, insert: true }],
};

export interface ForwardTarget {
  /** Tag from containerTag(): names the container's chains. */
  tag: string;
  name: string;
  address: string;
  /** The bridge subnet in CIDR form: its containers reach published ports through the host (hairpin). */
  subnet: string;
  publish: readonly Publish[];
}

function shortHash(containerDir: string): string {
  return createHash('sha256').update(containerDir).digest('hex').slice(0, 8);
}

export function containerTag(containerDir: string): string {
  return `TLXC-${shortHash(containerDir)}`;
}

/** The host side of the container's veth pair (interface names are limited to 15 characters). */
export function vethName(containerDir: string): string {
  return `tlx${shortHash(containerDir)}`;
}

export interface ContainerRules {
  nat: string[];
  filter: string[];
}

/** Expands ranges port by port, since iptables' DNAT to a port range does not keep the offset. */
function portPairs(publish: Publish): [number, number][] {
  const pairs: [number, number][] = [];
  for (let offset = 0; offset <= publish.host.last - publish.host.first; offset++) {
    pairs.push([publish.host.first + offset, publish.container.first + offset]);
  }
  return pairs;
}

export function containerRules(target: ForwardTarget): ContainerRules {
  const { tag, address } = target;
  const comment = `-m comment --comment "thin-lxc ${target.name}"`;
  const nat: string[] = [];
  const filter: string[] = [];
  const seen = new Set<string>();
  for (const publish of target.publish) {
    const p = publish.protocol;
    for (const [hostPort, containerPort] of portPairs(publish)) {
      const destination = publish.hostIp ? `-d ${publish.hostIp}/32 ` : '';
      nat.push(`-A ${tag}-D ${destination}-p ${p} -m ${p} --dport ${hostPort} ${comment} -j DNAT --to-destination ${address}:${containerPort}`);
      const key = `${p}/${containerPort}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const toContainer = `-d ${address}/32 -p ${p} -m ${p} --dport ${containerPort} -m conntrack --ctstate DNAT`;
      // Localhost and hairpin connections must come back through the host, so their source becomes the bridge's address.
      nat.push(`-A ${tag}-S -s 127.0.0.0/8 ${toContainer} ${comment} -j MASQUERADE`);
      nat.push(`-A ${tag}-S -s ${target.subnet} ${toContainer} ${comment} -j MASQUERADE`);
      // Accepted here so that forwarding works when the FORWARD policy is DROP (as Docker sets it).
      filter.push(`-A ${tag}-F ${toContainer} ${comment} -j ACCEPT`);
      filter.push(`-A ${tag}-F -s ${address}/32 -p ${p} -m ${p} --sport ${containerPort} -m conntrack --ctstate ESTABLISHED,RELATED ${comment} -j ACCEPT`);
    }
  }
  return { nat, filter };
}

/** What iptables-save shows of thin-lxc: the containers' tags and which base jumps exist. */
export interface SavedState {
  tags: string[];
  jumps: Set<string>;
}

export function readSaved(save: string): SavedState {
  const tags = new Set<string>();
  const jumps = new Set<string>();
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const chain = /^:(TLXC-[0-9a-f]{8})-D /.exec(line);
    if (chain?.[1] && table === 'nat') tags.add(chain[1]);
    const jump = /^-A (\S+) (.*)$/.exec(line);
    if (jump) jumps.add(`${table} ${jump[1]} ${jump[2]}`);
  }
  return { tags: [...tags].sort(), jumps };
}

/**
 * One iptables-restore --noflush script that puts `install` (or removes `remove`) and rebuilds the
 * shared chains from the containers' chains: a start after a crash replaces, never stacks.
 */
export function restoreScript(saved: SavedState, change: { install?: { tag: string; rules: ContainerRules }; remove?: string }): string {
  const keep = saved.tags.filter((tag) => tag !== change.install?.tag && tag !== change.remove);
  const all = change.install ? [...keep, change.install.tag].sort() : keep;
  const anyLeft = all.length > 0;
  const jumpLines = (table: keyof typeof BASE_JUMPS) =>
    BASE_JUMPS[table].flatMap(({ chain, spec, insert }) => {
      const present = saved.jumps.has(`${table} ${chain} ${spec}`);
      if (anyLeft && !present) return [insert ? `-I ${chain} 1 ${spec}` : `-A ${chain} ${spec}`];
      if (!anyLeft && present && table !== 'raw') return [`-D ${chain} ${spec}`];
      return [];
    });
  const own = (suffix: string) => (change.install ? [`:${change.install.tag}-${suffix} - [0:0]`] : []);
  const removed = (suffix: string) => (change.remove ? [`:${change.remove}-${suffix} - [0:0]`, `-X ${change.remove}-${suffix}`] : []);
  const sharedEnd = (shared: string) => (anyLeft ? [] : [`-X ${shared}`]);

  const lines: string[] = [];
  if (anyLeft) {
    // The guard stays once installed: route_localnet stays on for the bridge, and the guard is what makes that safe.
    lines.push('*raw', `:${CHAINS.guard} - [0:0]`, `-A ${CHAINS.guard} ! -i lo -d 127.0.0.0/8 -j DROP`, ...jumpLines('raw'), 'COMMIT');
  }
  lines.push(
    '*nat',
    `:${CHAINS.dnat} - [0:0]`,
    `:${CHAINS.snat} - [0:0]`,
    ...own('D'),
    ...own('S'),
    ...(change.install?.rules.nat ?? []),
    ...all.map((tag) => `-A ${CHAINS.dnat} -j ${tag}-D`),
    ...all.map((tag) => `-A ${CHAINS.snat} -j ${tag}-S`),
    ...jumpLines('nat'),
    ...removed('D'),
    ...removed('S'),
    ...sharedEnd(CHAINS.dnat),
    ...sharedEnd(CHAINS.snat),
    'COMMIT',
    '*filter',
    `:${CHAINS.forward} - [0:0]`,
    ...own('F'),
    ...(change.install?.rules.filter ?? []),
    ...all.map((tag) => `-A ${CHAINS.forward} -j ${tag}-F`),
    ...jumpLines('filter'),
    ...removed('F'),
    ...sharedEnd(CHAINS.forward),
    'COMMIT',
    '',
  );
  return lines.join('\n');
}

/** A host port can be published by one thin container only (per protocol and host address). */
export function checkPublishConflicts(publishes: readonly Publish[], others: readonly { name: string; publish: readonly string[] }[]): void {
  const overlaps = (a: Publish, b: Publish) =>
    a.protocol === b.protocol &&
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
