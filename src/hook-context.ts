// The one typed reading of what LXC hands a hook (its environment, lxc.hook.version = 1, and our argument),
// and whether LXC runs it for the thin container it belongs to or for a copy made with LXC's own tools.
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from './errors.js';
import { quote } from './validate.js';

export type HookType = 'pre-mount' | 'destroy' | 'start-host' | 'post-stop' | 'clone';

export interface HookContext {
  type: HookType;
  /** LXC_NAME: the name the container was started, copied or destroyed as. */
  name: string;
  /** LXC_CONFIG_FILE: the config LXC loaded for it. */
  configFile: string;
  rootfsPath: string;
  /** LXC_PID, the container's init: the same for every hook of one start, another for the next start ('' when not set). */
  generation: string;
  /** The thin container's directory, given as the hook's one argument in the config. */
  containerDir: string;
}

export function parseHookContext(
  env: NodeJS.ProcessEnv,
  args: readonly string[],
  expected: HookType,
  hookFile: string,
): HookContext {
  // LXC sets LXC_HOOK_VERSION for start-time hooks but not for lxc.hook.destroy; LXC_HOOK_TYPE is set for both.
  if (env.LXC_HOOK_VERSION !== undefined && env.LXC_HOOK_VERSION !== '1') {
    throw new UserError(`${hookFile} needs lxc.hook.version = 1 in the container's config (got ${env.LXC_HOOK_VERSION})`);
  }
  if (env.LXC_HOOK_TYPE !== expected) {
    throw new UserError(`${hookFile} is a ${expected} hook, not ${env.LXC_HOOK_TYPE ?? 'unset'}: use it as lxc.hook.${expected}`);
  }
  const containerDir = args[0];
  if (!containerDir || args.length !== 1) {
    throw new UserError(`${hookFile} takes one argument, the thin container's directory: lxc.hook.${expected} = node ${hookFile} /containers/ID`);
  }
  return {
    type: expected,
    name: env.LXC_NAME ?? '',
    configFile: env.LXC_CONFIG_FILE ?? '',
    rootfsPath: env.LXC_ROOTFS_PATH ?? '',
    generation: env.LXC_PID ?? '',
    containerDir,
  };
}

/**
 * True when LXC runs the hook for the thin container itself: under its name, from its registration in its
 * lxcpath or from its own config (`lxc-start -n NAME -f DIR/image/config`). A copy made with lxc-copy or
 * lxc-snapshot keeps the hook lines, with the original's directory, under another name or config.
 */
export function isOwnRun(context: HookContext, own: { name: string; lxcpath: string; imageConfig: string }): boolean {
  if (context.name !== own.name) return false;
  if (context.configFile === '') return true;
  const config = canonical(context.configFile);
  return config === canonical(own.imageConfig) || config === canonical(join(own.lxcpath, own.name, 'config'));
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Why a copy made with LXC's own tools cannot be a thin container, and what to do instead. */
export function copyRefusal(copyName: string, original: string): string {
  const name = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(copyName) ? copyName : 'NEW';
  return (
    `${quote(copyName)} is a copy of thin container ${original} made with LXC's own tools (lxc-copy, lxc-snapshot), ` +
    `which cannot copy a thin container (its files are a union that only its own start mounts): ` +
    `make a copy with thin-lxc create ${name} --base ${original}`
  );
}
