// Port forwarding as data: the iptables (IPv4) and ip6tables (IPv6) rules of one thin container, and the
// restore script that installs or removes them while keeping every other container's rules as they are.
// Both families have the same chains; IPv4 alone has the localhost guard and rules.
import { createHash } from 'node:crypto';
import type { Family, Publish } from '../core/validate.js';

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

type Jump = { chain: string; spec: string; insert: boolean };

/** The jumps from the built-in chains to the shared ones, written as iptables-save prints them back. */
const BASE_JUMPS: Record<Family, Record<Table, Jump[]>> = {
  4: {
    nat: [
      { chain: 'PREROUTING', spec: `-m addrtype --dst-type LOCAL -j ${CHAINS.dnat}`, insert: false },
      { chain: 'OUTPUT', spec: `-m addrtype --dst-type LOCAL -j ${CHAINS.dnat}`, insert: false },
      { chain: 'POSTROUTING', spec: `-j ${CHAINS.snat}`, insert: true },
    ],
    filter: [{ chain: 'FORWARD', spec: `-j ${CHAINS.forward}`, insert: true }],
    // With route_localnet on the bridge, nothing but the host itself may send to 127.0.0.0/8 (CVE-2020-8558).
    raw: [{ chain: 'PREROUTING', spec: `-j ${CHAINS.guard}`, insert: true }],
  },
  6: {
    nat: [
      { chain: 'PREROUTING', spec: `-m addrtype --dst-type LOCAL -j ${CHAINS.dnat}`, insert: false },
      // The kernel drops what is DNATed from [::1] to another host (IPv6 has no route_localnet), so a
      // connection to [::1]:PORT must not be taken: refused at once, a client goes on to 127.0.0.1.
      { chain: 'OUTPUT', spec: `! -d ::1/128 -m addrtype --dst-type LOCAL -j ${CHAINS.dnat}`, insert: false },
      { chain: 'POSTROUTING', spec: `-j ${CHAINS.snat}`, insert: true },
    ],
    filter: [{ chain: 'FORWARD', spec: `-j ${CHAINS.forward}`, insert: true }],
    // Nothing routes ::1 off the host, so there is nothing to guard.
    raw: [],
  },
};

export interface ForwardTarget {
  /** Tag from containerTag(): names the container's chains. */
  tag: string;
  name: string;
  address: string;
  /** The bridge subnet in CIDR form: its containers reach published ports through the host (hairpin). */
  subnet: string;
  /** The container's IPv6 address and the bridge's IPv6 network, when it has one. */
  ipv6: { address: string; subnet: string } | null;
  publish: readonly Publish[];
}

/** The families the target's ports are published on: IPv6 only for a container with an IPv6 address. */
export function targetFamilies(target: ForwardTarget): Family[] {
  const on = (family: Family) => target.publish.some((publish) => publish.family === null || publish.family === family);
  return [...(on(4) ? [4 as const] : []), ...(target.ipv6 && on(6) ? [6 as const] : [])];
}

/** A stable short name for a container directory; create checks it for clashes. */
function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/**
 * The host side of the container's veth pair (interface names are limited to 15 characters); `salt`
 * gives another name when this one clashes.
 */
export function vethName(containerDir: string, salt = 0): string {
  return `tlx${shortHash(salt === 0 ? containerDir : `${containerDir}#${salt}`)}`;
}

/**
 * The container's chains are named after its veth (iptables chain names are limited to 28 characters),
 * which its state records: containers made when the name came from SHA-256 keep their names.
 */
export function containerTag(veth: string): string {
  return `TLXC-${veth.slice('tlx'.length)}`;
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

/** The container's rules for one family: its published ports on that family, to its address in it. */
export function containerRules(target: ForwardTarget, family: Family = 4): ContainerRules {
  const { tag } = target;
  const own = family === 4 ? { address: target.address, subnet: target.subnet } : target.ipv6;
  if (!own) return { nat: [], filter: [] };
  const host = family === 4 ? '/32' : '/128';
  const to = (port: number) => (family === 4 ? `${own.address}:${port}` : `[${own.address}]:${port}`);
  const comment = `-m comment --comment "thin-lxc ${target.name}"`;
  const nat: string[] = [];
  const filter: string[] = [];
  const seen = new Set<string>();
  for (const publish of target.publish.filter((candidate) => candidate.family === null || candidate.family === family)) {
    const p = publish.protocol;
    for (const [hostPort, containerPort] of portPairs(publish)) {
      const destination = publish.hostIp ? `-d ${publish.hostIp}${host} ` : '';
      nat.push(`-A ${tag}-D ${destination}-p ${p} -m ${p} --dport ${hostPort} ${comment} -j DNAT --to-destination ${to(containerPort)}`);
      const key = `${p}/${containerPort}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const toContainer = `-d ${own.address}${host} -p ${p} -m ${p} --dport ${containerPort} -m conntrack --ctstate DNAT`;
      // Localhost and hairpin connections must come back through the host, so their source becomes the bridge's address.
      if (family === 4) nat.push(`-A ${tag}-S -s 127.0.0.0/8 ${toContainer} ${comment} -j MASQUERADE`);
      nat.push(`-A ${tag}-S -s ${own.subnet} ${toContainer} ${comment} -j MASQUERADE`);
      // Accepted here so that forwarding works when the FORWARD policy is DROP (as Docker sets it).
      filter.push(`-A ${tag}-F ${toContainer} ${comment} -j ACCEPT`);
      filter.push(`-A ${tag}-F -s ${own.address}${host} -p ${p} -m ${p} --sport ${containerPort} -m conntrack --ctstate ESTABLISHED,RELATED ${comment} -j ACCEPT`);
    }
  }
  return { nat, filter };
}

/** What iptables-save shows: the containers' tags, every chain (as "table chain") and how often each rule appears (as "table chain spec"). */
export interface SavedState {
  tags: string[];
  chains: Set<string>;
  rules: Map<string, number>;
}

export function readSaved(save: string): SavedState {
  const tags = new Set<string>();
  const chains = new Set<string>();
  const rules = new Map<string, number>();
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const chain = /^:(\S+) /.exec(line)?.[1];
    if (chain) chains.add(`${table} ${chain}`);
    const tag = chain && /^(TLXC-[0-9a-f]{8})-D$/.exec(chain)?.[1];
    if (tag && table === 'nat') tags.add(tag);
    const jump = /^-A (\S+) (.*)$/.exec(line);
    if (jump) {
      const key = `${table} ${jump[1]} ${jump[2]}`;
      rules.set(key, (rules.get(key) ?? 0) + 1);
    }
  }
  return { tags: [...tags].sort(), chains, rules };
}

/** Whether iptables has a container's forwarding whole: its own DNAT rules, and every jump that leads to its chains. */
export function forwardingInPlace(saved: SavedState, tag: string, family: Family = 4): boolean {
  const has = (key: string) => (saved.rules.get(key) ?? 0) > 0;
  const ownRules = [...saved.rules.keys()].some((key) => key.startsWith(`nat ${tag}-D `));
  const baseJumps = (['nat', 'filter'] as const).every((table) => BASE_JUMPS[family][table].every(({ chain, spec }) => has(`${table} ${chain} ${spec}`)));
  return ownRules && baseJumps && SHARED.every(({ table, chain, suffix }) => has(`${table} ${chain} -j ${tag}-${suffix}`));
}

/** The guard as thin-lxc writes it, and as iptables-save prints it back. */
const GUARD_RULE = '! -i lo -d 127.0.0.0/8 -j DROP';
const GUARD_SAVED = '-d 127.0.0.0/8 ! -i lo -j DROP';

type Table = 'raw' | 'nat' | 'filter';
/** Each shared chain, its table, and the suffix of the container chains it jumps to. */
const SHARED: { table: Table; chain: string; suffix: string }[] = [
  { table: 'nat', chain: CHAINS.dnat, suffix: 'D' },
  { table: 'nat', chain: CHAINS.snat, suffix: 'S' },
  { table: 'filter', chain: CHAINS.forward, suffix: 'F' },
];

/**
 * The raw table's part: the guard and its jump, where missing. It stays once installed: route_localnet
 * stays on for the bridge, and the guard is what makes that safe.
 */
function guardLines(saved: SavedState): string[] {
  const has = (spec: string) => (saved.rules.get(`raw ${CHAINS.guard} ${spec}`) ?? 0) > 0;
  const lines = has(GUARD_SAVED) || has(GUARD_RULE) ? [] : [`:${CHAINS.guard} - [0:0]`, `-A ${CHAINS.guard} ${GUARD_RULE}`];
  for (const { chain, spec } of BASE_JUMPS[4].raw) if (!saved.rules.get(`raw ${chain} ${spec}`)) lines.push(`-I ${chain} 1 ${spec}`);
  return lines;
}

/** Whether the raw table has the localhost guard and the jump to it: what makes route_localnet=1 safe. */
export function guardInPlace(saved: SavedState): boolean {
  return guardLines(saved).length === 0;
}

/** The iptables-restore script that puts the guard back where it is missing; '' when it is in place. */
export function guardScript(saved: SavedState): string {
  return formatScript({ raw: guardLines(saved) });
}

/**
 * One iptables-restore --noflush script that installs `install` (or removes `remove`), changing nothing
 * that is already right: on nf_tables every flushed or deleted rule makes the kernel wait a grace
 * period (~12 ms a table here), so a start only adds, and a stop only deletes what was its own.
 * A start after a crash replaces the container's chains, never stacks; missing jumps are added back.
 * Returns '' when there is nothing to change.
 */
export function restoreScript(saved: SavedState, change: { install?: { tag: string; rules: ContainerRules }; remove?: string }, family: Family = 4): string {
  const has = (table: Table, chain: string) => saved.chains.has(`${table} ${chain}`);
  const count = (table: Table, chain: string, spec: string) => saved.rules.get(`${table} ${chain} ${spec}`) ?? 0;
  const hasRule = (table: Table, chain: string, spec: string) => count(table, chain, spec) > 0;
  const keep = saved.tags.filter((tag) => tag !== change.install?.tag && tag !== change.remove);
  const all = change.install ? [...keep, change.install.tag].sort() : keep;
  const anyLeft = all.length > 0;
  const installing = (table: Table, chain: string) => change.install !== undefined && chain.startsWith(`${change.install.tag}-`) && table !== 'raw';

  const baseJumps = (table: Table) =>
    BASE_JUMPS[family][table].flatMap(({ chain, spec, insert }) => {
      const present = count(table, chain, spec);
      if (anyLeft && present === 0) return [insert ? `-I ${chain} 1 ${spec}` : `-A ${chain} ${spec}`];
      // Every copy goes (a copy left would keep the shared chain from being deleted).
      if (!anyLeft && table !== 'raw') return Array.from({ length: present }, () => `-D ${chain} ${spec}`);
      return [];
    });

  const sections: Record<Table, string[]> = { raw: [], nat: [], filter: [] };
  if (anyLeft && family === 4) sections.raw.push(...guardLines(saved));
  if (change.install) {
    const { tag, rules } = change.install;
    for (const { table, chain, suffix } of SHARED) {
      if (!has(table, chain)) sections[table].push(`:${chain} - [0:0]`);
      sections[table].push(`:${tag}-${suffix} - [0:0]`);
    }
    sections.nat.push(...rules.nat);
    sections.filter.push(...rules.filter);
  }
  for (const { table, chain, suffix } of SHARED) {
    const lines = sections[table];
    if (anyLeft) {
      for (const tag of all) {
        const target = `${tag}-${suffix}`;
        if ((has(table, target) || installing(table, target)) && !hasRule(table, chain, `-j ${target}`)) lines.push(`-A ${chain} -j ${target}`);
      }
    }
    if (change.remove) {
      const own = `${change.remove}-${suffix}`;
      if (anyLeft) for (let copy = 0; copy < count(table, chain, `-j ${own}`); copy++) lines.push(`-D ${chain} -j ${own}`);
      // Removing the last container: emptying the shared chain drops its jump too.
      if (!anyLeft && has(table, chain)) lines.push(`:${chain} - [0:0]`);
      if (has(table, own)) lines.push(`:${own} - [0:0]`, `-X ${own}`);
    }
  }
  sections.nat.push(...baseJumps('nat'));
  sections.filter.push(...baseJumps('filter'));
  if (!anyLeft) for (const { table, chain } of SHARED) if (has(table, chain)) sections[table].push(`-X ${chain}`);

  return formatScript(sections);
}

/** An iptables-restore script of the tables that have lines, in the order raw, nat, filter; '' when none has. */
function formatScript(sections: Partial<Record<Table, readonly string[]>>): string {
  const tables: Table[] = ['raw', 'nat', 'filter'];
  const script = tables.flatMap((table) => (sections[table]?.length ? [`*${table}`, ...sections[table], 'COMMIT'] : []));
  return script.length > 0 ? `${script.join('\n')}\n` : '';
}

/**
 * The quick way to install one container's forwarding, reading nothing first: iptables-save grows with
 * every rule on the host (~8 ms with 30 containers' rules, measured when this was judged again: ~10% of
 * what thin-lxc adds to a start with ports, and growing), so a start that read it would slow down with
 * every running container. Instead the script itself checks (`-C`) that the guard, the
 * shared chains and their base jumps are in place, then adds the container's own chains and jumps. If any
 * of them is missing (the first container, or a firewall reload flushed or deleted them), iptables-restore
 * refuses the script, each table's changes all or nothing, and the caller reconciles from iptables-save.
 */
export function quickInstallScript(install: { tag: string; rules: ContainerRules }, family: Family = 4, options: { first?: boolean } = {}): string {
  const { tag, rules } = install;
  const checks = (table: Table) => [
    ...(table === 'raw' && family === 4 ? [`-C ${CHAINS.guard} ${GUARD_RULE}`] : []),
    ...(options.first && table !== 'raw' ? [] : BASE_JUMPS[family][table].map(({ chain, spec }) => `-C ${chain} ${spec}`)),
  ];
  /**
   * With `first` (no other container's forwarding is recorded): the shared chains and the jumps to them are made
   * here, as a reconcile would make them. `-N` fails where a shared chain is there already (an unrecorded
   * container's, or left by a stop that failed), and so sends the caller the long way.
   */
  const made = (table: Table) =>
    options.first && table !== 'raw'
      ? [
          ...SHARED.filter((entry) => entry.table === table).map(({ chain }) => `-N ${chain}`),
          ...BASE_JUMPS[family][table].map(({ chain, spec, insert }) => (insert ? `-I ${chain} 1 ${spec}` : `-A ${chain} ${spec}`)),
        ]
      : [];
  const own = (table: Table, tableRules: readonly string[]) => {
    const shared = SHARED.filter((entry) => entry.table === table);
    return [
      ...checks(table),
      ...made(table),
      ...shared.map(({ suffix }) => `:${tag}-${suffix} - [0:0]`),
      ...tableRules,
      ...shared.map(({ chain, suffix }) => `-A ${chain} -j ${tag}-${suffix}`),
    ];
  };
  return formatScript({ raw: checks('raw'), nat: own('nat', rules.nat), filter: own('filter', rules.filter) });
}

/**
 * Removes one container's jumps and chains, leaving the shared chains to the others. Deleting a jump that
 * is not there fails the script, so a flushed firewall sends the caller the long way here too.
 * With `last` (no other container's forwarding is recorded), the shared chains and the jumps to them from the
 * built-in chains go too, as a reconcile would remove them, without reading iptables-save first. Deleting a
 * shared chain that still holds a rule (another container's jump, unrecorded) fails, and so does deleting a
 * base jump that is not there: the caller then takes the long way.
 */
export function quickRemoveScript(tag: string, options: { last?: boolean; family?: Family } = {}): string {
  const lines = (table: 'nat' | 'filter') => {
    const shared = SHARED.filter((entry) => entry.table === table);
    return [
      ...shared.flatMap(({ chain, suffix }) => [`-D ${chain} -j ${tag}-${suffix}`, `:${tag}-${suffix} - [0:0]`, `-X ${tag}-${suffix}`]),
      ...(options.last ? BASE_JUMPS[options.family ?? 4][table].map(({ chain, spec }) => `-D ${chain} ${spec}`) : []),
      ...(options.last ? shared.map(({ chain }) => `-X ${chain}`) : []),
    ];
  };
  return formatScript({ nat: lines('nat'), filter: lines('filter') });
}
