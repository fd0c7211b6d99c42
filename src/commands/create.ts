// thin-lxc create: plans a thin container as plain data, then writes it in one place.
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveBase, baseConfigLines } from '../base.js';
import { containerPaths, listContainers, serializeState, type ContainerPaths, type ThinState } from '../container.js';
import { UserError } from '../errors.js';
import { assignMacs } from '../hwaddr.js';
import { hookCommand, thinLxcVersion } from '../install.js';
import { lxcContainerExists, register, registrationDir, unregister } from '../lxc.js';
import { networkIndexes } from '../lxc-config.js';
import { readTemplate, renderConfig } from '../render.js';
import type { Settings } from '../settings.js';
import { UNION_FILESYSTEMS, requireKernelSupport, type UnionFs } from '../union.js';
import {
  formatMount,
  formatPublish,
  parseMount,
  parsePublish,
  quote,
  splitList,
  validateIPv4,
  validateName,
} from '../validate.js';

export interface CreateRequest {
  name: string;
  base: string;
  id?: string | undefined;
  ip?: string | undefined;
  publish?: string[] | undefined;
  mount?: string[] | undefined;
  fs?: string | undefined;
}

export interface CreatePlan {
  state: ThinState;
  paths: ContainerPaths;
  config: string;
}

export function planCreate(request: CreateRequest, settings: Settings, cwd: string): CreatePlan {
  const name = validateName(request.name, 'name');
  const id = validateName(request.id ?? name, 'id');
  const fs = parseFs(request.fs);
  const ip = request.ip === undefined ? null : validateIPv4(request.ip);
  const publish = splitList(request.publish).map((spec) => formatPublish(parsePublish(spec)));
  const mounts = splitList(request.mount).map((spec) => formatMount(parseMount(spec, cwd)));

  const paths = containerPaths(settings.root, id);
  const others = listContainers(settings.root);
  if (existsSync(paths.dir)) {
    throw new UserError(`id ${quote(id)} is taken (${paths.dir} exists): choose another --id, or thin-lxc destroy ${id}`);
  }
  const sameName = others.find((other) => other.state.name === name);
  if (sameName) {
    throw new UserError(`name ${quote(name)} is taken by thin container ${sameName.state.id}: choose another name`);
  }
  if (lxcContainerExists(settings.lxcpath, name)) {
    throw new UserError(
      `name ${quote(name)} is already used by an LXC container (${registrationDir(settings.lxcpath, name)}): choose another name`,
    );
  }

  const base = resolveBase(request.base, settings.lxcpath, cwd);
  if (fs === 'aufs' && base.layers.length > 1) {
    throw new UserError(`base ${quote(request.base)} is itself a union of layers, which AuFS cannot stack on: use --fs overlay`);
  }
  requireKernelSupport(fs);

  const takenMacs = new Set(others.flatMap((other) => Object.values(other.state.hwaddrs)));
  const hwaddrs = assignMacs(networkIndexes(base.entries), takenMacs);
  const version = thinLxcVersion();
  const config = renderConfig(readTemplate(), {
    version,
    id,
    name,
    baseName: base.name,
    baseConfig: base.configPath,
    baseLines: baseConfigLines(base),
    fs,
    rootfs: paths.rootfs,
    wlayer: paths.wlayer,
    hwaddrs: Object.entries(hwaddrs).map(([index, address]) => ({ index: Number(index), address })),
    hooks: { mount: hookCommand('mount', paths.dir), destroy: hookCommand('destroy', paths.dir) },
  });
  const state: ThinState = {
    id,
    name,
    base: base.dir,
    baseName: base.name,
    fs,
    layers: base.layers,
    hwaddrs,
    ip,
    publish,
    mounts,
    lxcpath: settings.lxcpath,
    created: new Date().toISOString(),
  };
  return { state, paths, config };
}

function parseFs(value: string | undefined): UnionFs {
  const fs = value ?? 'overlay';
  if (!(UNION_FILESYSTEMS as readonly string[]).includes(fs)) {
    throw new UserError(`fs ${quote(fs)} is not supported: use overlay (the default) or aufs`);
  }
  return fs as UnionFs;
}

/**
 * Builds the container in a dot directory inside the root and renames it into place, then registers
 * it with LXC; whatever fails, nothing half-made is left behind.
 */
export function applyCreate(plan: CreatePlan, settings: Settings): void {
  prepareRoot(settings.root);
  const { state, paths } = plan;
  const staging = join(settings.root, `.creating-${state.id}-${process.pid}`);
  let placed = false;
  try {
    for (const dir of ['image/rootfs', 'wlayer', 'work']) mkdirSync(join(staging, dir), { recursive: true, mode: 0o755 });
    writeFileSync(join(staging, 'image', 'config'), plan.config, { mode: 0o644 });
    writeFileSync(join(staging, 'thin-lxc.ini'), serializeState(state), { mode: 0o644 });
    try {
      renameSync(staging, paths.dir);
    } catch (error) {
      throw alreadyExists(error) ? new UserError(`id ${quote(state.id)} was taken while creating: choose another --id`) : error;
    }
    placed = true;
    try {
      register(settings.lxcpath, state.name, state.id, paths.config);
    } catch (error) {
      throw alreadyExists(error)
        ? new UserError(`name ${quote(state.name)} was taken by another LXC container while creating: choose another name`)
        : error;
    }
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    if (placed) {
      unregister(settings.lxcpath, state.name, paths.config);
      rmSync(paths.dir, { recursive: true, force: true });
    }
    throw error;
  }
}

function prepareRoot(root: string): void {
  mkdirSync(root, { recursive: true, mode: 0o755 });
  // Hooks run as root from configs in this directory: anyone who could write here could run code as root.
  if ((statSync(root).mode & 0o002) !== 0) {
    throw new UserError(`root ${root} is writable by everyone, which would let any user run code as root: chmod o-w ${root}`);
  }
}

function alreadyExists(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EEXIST' || code === 'ENOTEMPTY';
}
