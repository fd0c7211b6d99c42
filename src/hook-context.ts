// The one typed reading of what LXC hands a hook: its environment (lxc.hook.version = 1) and our argument.
import { UserError } from './errors.js';

export type HookType = 'pre-mount' | 'destroy' | 'start-host' | 'post-stop';

export interface HookContext {
  type: HookType;
  /** LXC_NAME: the name the container was started or destroyed as. */
  name: string;
  configFile: string;
  rootfsPath: string;
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
    containerDir,
  };
}
