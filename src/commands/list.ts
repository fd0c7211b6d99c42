// thin-lxc list and show: the thin containers in a root, with their LXC state.
import { findContainer, listContainers, type ThinContainer } from '../container.js';
import { lxcState, lxcStates } from '../lxc.js';
import type { Settings } from '../settings.js';
import { formatTable } from '../table.js';

export interface ContainerView {
  id: string;
  name: string;
  state: string;
  base: string;
  baseDir: string;
  fs: string;
  ip: string | null;
  mac: string | null;
  bridge: string | null;
  publish: string[];
  mounts: string[];
  dir: string;
  config: string;
  wlayer: string;
  layers: string[];
  created: string;
}

function view({ state, paths }: ThinContainer, lxc: string): ContainerView {
  return {
    id: state.id,
    name: state.name,
    state: lxc,
    base: state.baseName,
    baseDir: state.base,
    fs: state.fs,
    ip: state.ip,
    mac: state.hwaddrs['0'] ?? null,
    bridge: state.bridge,
    publish: state.publish,
    mounts: state.mounts,
    dir: paths.dir,
    config: paths.config,
    wlayer: paths.wlayer,
    layers: state.layers,
    created: state.created,
  };
}

export function listViews(settings: Settings): ContainerView[] {
  const containers = listContainers(settings.root);
  const statesByLxcpath = new Map<string, Map<string, string>>();
  return containers.map((container) => {
    const { lxcpath, name } = container.state;
    if (!statesByLxcpath.has(lxcpath)) statesByLxcpath.set(lxcpath, lxcStates(lxcpath));
    return view(container, statesByLxcpath.get(lxcpath)?.get(name) ?? 'UNREGISTERED');
  });
}

export function formatList(views: readonly ContainerView[], root: string): string {
  if (views.length === 0) return `No thin containers in ${root}. Make one with: thin-lxc create NAME --base BASE`;
  const table = formatTable(
    ['ID', 'NAME', 'STATE', 'BASE', 'IP', 'PORTS', 'MOUNTS'],
    views.map((v) => [v.id, v.name, v.state, v.base, v.ip ?? '-', v.publish.join(',') || '-', v.mounts.join(',') || '-']),
  );
  return `${table}\n\n${formatBasesInUse(views)}`;
}

/** Bases with thin containers on them: destroying or starting one of these affects those containers. */
function formatBasesInUse(views: readonly ContainerView[]): string {
  const byBase = new Map<string, string[]>();
  for (const v of views) byBase.set(v.baseDir, [...(byBase.get(v.baseDir) ?? []), v.name]);
  const lines = [...byBase].map(([baseDir, names]) => `  ${baseDir}: ${names.join(', ')}`);
  return ['Bases in use (do not destroy them while thin containers use them):', ...lines].join('\n');
}

export function showView(idOrName: string, settings: Settings): ContainerView {
  const container = findContainer(settings.root, idOrName);
  return view(container, lxcState(container.state.name, container.state.lxcpath));
}

export function formatShow(v: ContainerView): string {
  const rows: [string, string][] = [
    ['id', v.id],
    ['name', v.name],
    ['state', v.state],
    ['base', `${v.base} (${v.baseDir})`],
    ['fs', v.fs],
    ['layers', v.layers.join(' over ')],
    ['write layer', v.wlayer],
    ['config', v.config],
    ['ip', v.ip ? `${v.ip} on ${v.bridge} (reserved for ${v.mac})` : '-'],
    ['ports', v.publish.join(', ') || '-'],
    ['mounts', v.mounts.join(', ') || '-'],
    ['created', v.created],
  ];
  return rows.map(([key, value]) => `${`${key}:`.padEnd(13)}${value}`).join('\n');
}
