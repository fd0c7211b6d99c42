// thin-lxc list and show: the thin containers in a root, with their LXC state.
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { findContainer, listContainers } from '../container/containers.js';
import { type ThinContainer } from '../state/paths.js';
import { diskUsage, lxcState, lxcStatuses } from '../core/commands.js';
import { lxcStatusLookup } from '../lxc/lxcpath.js';
import type { ThinState } from '../state/state.js';
import { diskUse, type DiskUse } from '../union/disk.js';
import type { Settings } from './settings.js';

/** What list and show report: the state's fields a user sees, with LXC's view and the paths. */
export type ContainerView = Pick<
  ThinState,
  'id' | 'name' | 'fs' | 'ip' | 'ip6' | 'bridge' | 'publish' | 'mounts' | 'layers' | 'created' | 'autostart' | 'ephemeral' | 'tmpfs' | 'memory' | 'cpus' | 'disk' | 'diskMode' | 'idmap'
> & {
  /** LXC's state of it. */
  state: string;
  base: string;
  /** The base's own LXC state, when it is an LXC container in this lxcpath. */
  baseState: string | null;
  baseDir: string;
  /** The base (its config or one of its layers) is gone: removed by hand, so this container cannot start. */
  baseGone: boolean;
  mac: string | null;
  dir: string;
  config: string;
  wlayer: string;
  /** Disk space the write layer uses, in bytes. */
  wlayerBytes: number | null;
  /** With --disk: what the write layer uses against its limit (disk), in bytes; null when it cannot be read. */
  diskUsedBytes: number | null;
  /** With --disk in an image: the image file's blocks on the host's disk, in bytes; null otherwise. */
  diskHostBytes: number | null;
};

function view({ state, paths }: ThinContainer, lxc: string, wlayerBytes: number | null, baseState: string | null, use: DiskUse | null = null): ContainerView {
  const diskUsedBytes = use?.usedBytes ?? null;
  const diskHostBytes = use?.hostBytes ?? null;
  return {
    id: state.id,
    name: state.name,
    state: lxc,
    base: state.baseName,
    baseState,
    baseDir: state.base,
    baseGone: baseIsGone(state),
    fs: state.fs,
    ip: state.ip,
    ip6: state.ip6,
    mac: state.hwaddrs['0'] ?? null,
    bridge: state.bridge,
    publish: state.publish,
    mounts: state.mounts,
    dir: paths.dir,
    config: paths.config,
    wlayer: paths.wlayer,
    wlayerBytes,
    layers: state.layers,
    created: state.created,
    autostart: state.autostart,
    ephemeral: state.ephemeral,
    tmpfs: state.tmpfs,
    memory: state.memory,
    cpus: state.cpus,
    disk: state.disk,
    diskMode: state.diskMode,
    diskUsedBytes,
    diskHostBytes,
    idmap: state.idmap,
  };
}

/** A base removed by hand (`rm -rf`, or lxc-destroy of one made before thin-lxc listed its containers in lxc_snapshots). */
export function baseIsGone(state: ThinState): boolean {
  return !existsSync(join(state.base, 'config')) || state.layers.some((layer) => !existsSync(layer));
}

/** Reads only: what a killed create or destroy left is swept by the next create or destroy. */
export function listViews(settings: Settings): ContainerView[] {
  const containers = listContainers(settings.root);
  const statusOf = lxcStatusLookup();
  const sizes = diskUsage(containers.map((container) => container.paths.wlayer));
  return containers.map((container) => {
    const { lxcpath, name, base } = container.state;
    const baseState = dirname(base) === lxcpath ? (statusOf(lxcpath, basename(base))?.state ?? null) : null;
    const status = statusOf(lxcpath, name);
    const use = diskUse(container.state, container.paths.diskImage, status?.pid ?? null);
    return view(container, status?.state ?? 'UNREGISTERED', sizes.get(container.paths.wlayer) ?? null, baseState, use);
  });
}

export function formatList(views: readonly ContainerView[], root: string): string {
  if (views.length === 0) return `No thin containers in ${root}. Make one with: thin-lxc create NAME --base BASE`;
  const disks = views.some((v) => v.disk !== null);
  const table = formatTable(
    ['ID', 'NAME', 'STATE', 'BASE', 'IP', ...(views.some((v) => v.ip6) ? ['IP6'] : []), 'PORTS', 'MOUNTS', 'WRITES', ...(disks ? ['DISK'] : [])],
    views.map((v) => [
      v.id,
      v.name,
      v.state,
      v.base,
      v.ip ?? '-',
      ...(views.some((other) => other.ip6) ? [v.ip6 ?? '-'] : []),
      v.publish.join(',') || '-',
      v.mounts.join(',') || '-',
      formatBytes(v.wlayerBytes),
      ...(disks ? [v.disk === null ? '-' : `${formatBytes(v.diskUsedBytes)}/${formatBytes(Number(v.disk))}`] : []),
    ]),
  );
  return `${table}\n\n${formatBasesInUse(views)}`;
}

/** Bases with thin containers on them: destroying or starting one of these affects those containers. */
function formatBasesInUse(views: readonly ContainerView[]): string {
  const byBase = new Map<string, string[]>();
  for (const v of views) byBase.set(v.baseDir, [...(byBase.get(v.baseDir) ?? []), v.name]);
  const lines = [...byBase].map(([baseDir, names]) => `  ${baseDir}: ${names.join(', ')}`);
  const running = views.filter((v) => v.baseState === 'RUNNING' || v.baseState === 'FROZEN').map((v) => v.base);
  const warnings = [...new Set(running)].map((base) => `Warning: base ${base} is running: its thin containers see its files change under them (lxc-stop -n ${base}).`);
  for (const v of views.filter((view) => view.baseGone)) {
    warnings.push(`Warning: base ${v.base} of ${v.name} is gone (${v.baseDir}): ${v.name} cannot start; restore the base, or thin-lxc destroy ${v.name}`);
  }
  return ['Bases in use (do not destroy them while thin containers use them):', ...lines, ...warnings].join('\n');
}

export function showView(idOrName: string, settings: Settings): ContainerView {
  const container = findContainer(settings.root, idOrName, settings.lxcpath);
  const { state, paths } = container;
  const size = diskUsage([paths.wlayer]).get(paths.wlayer) ?? null;
  const baseState = dirname(state.base) === state.lxcpath ? lxcState(basename(state.base), state.lxcpath) : null;
  // A running image is read through its init: its pid, from the one LXC call that gives it.
  const pid = state.diskMode === 'image' ? (lxcStatuses(state.lxcpath).get(state.name)?.pid ?? null) : null;
  return view(container, lxcState(state.name, state.lxcpath), size, baseState, diskUse(state, paths.diskImage, pid));
}

export function formatShow(v: ContainerView): string {
  const rows: [string, string][] = [
    ['id', v.id],
    ['name', v.name],
    ['state', v.state],
    ['base', `${v.base} (${v.baseDir})`],
    ['fs', v.fs],
    ['layers', v.layers.join(' over ')],
    ['write layer', `${v.wlayer} (${formatBytes(v.wlayerBytes)})`],
    ['config', v.config],
    ['ip', v.ip ? `${v.ip} on ${v.bridge} (reserved for ${v.mac})` : '-'],
    ['ip6', v.ip6 ?? '-'],
    ['ports', v.publish.join(', ') || '-'],
    ['mounts', v.mounts.join(', ') || '-'],
    ['limits', [v.memory ? `memory ${formatBytes(Number(v.memory))}` : '', v.cpus ? `${v.cpus} CPUs` : ''].filter(Boolean).join(', ') || '-'],
    ['disk', formatDisk(v)],
    ['autostart', v.autostart ? 'yes' : 'no'],
    ['lifetime', v.ephemeral ? 'ephemeral (destroyed when it stops)' : 'kept'],
    ['root inside', v.idmap ? `unprivileged: uid and gid ${v.idmap.split(':')[0]} on the host (map ${v.idmap})` : 'privileged: root on the host'],
    ['created', v.created],
  ];
  if (v.diskMode === 'image') rows.splice(6, 1, ['write layer', `in the disk image ${v.dir}/disk.img, mounted only inside the container`]);
  if (v.tmpfs) rows.splice(6, 1, ['write layer', `tmpfs of ${/%$/.test(v.tmpfs) ? `${v.tmpfs} of memory` : formatBytes(Number(v.tmpfs))}, empty at every start, over ${v.wlayer}`]);
  return rows.map(([key, value]) => `${`${key}:`.padEnd(13)}${value}`).join('\n');
}

function formatDisk(v: ContainerView): string {
  if (v.disk === null) return '-';
  // An image's use is its filesystem's (ext4's own metadata included, as df inside shows); the host pays its file's blocks.
  const how = v.diskMode === 'quota' ? 'project quota' : `image ${v.dir}/disk.img, ${formatBytes(v.diskHostBytes)} of the host's disk`;
  return `${formatBytes(v.diskUsedBytes)} used of ${formatBytes(Number(v.disk))} (${how})`;
}

function formatBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  const units = ['B', 'K', 'M', 'G', 'T'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 || value >= 10 ? Math.round(value) : value.toFixed(1)}${units[unit]}`;
}

function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** A container as create, update and destroy report it with --json: its spec, without asking LXC anything. */
export function summaryOf(state: ThinState): Record<string, unknown> {
  const { name, id, baseName: base, ip, ip6, publish, mounts, autostart, ephemeral, tmpfs, memory, cpus, idmap, disk, diskMode } = state;
  return { name, id, base, ip, ip6, publish, mounts, autostart, ephemeral, tmpfs, memory, cpus, unprivileged: idmap !== null, idmap, disk, diskMode };
}
