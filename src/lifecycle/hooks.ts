// What a hook gets from LXC (its environment, lxc.hook.version = 1, and our one argument), whether LXC runs
// it for the thin container it belongs to or for a copy made with LXC's own tools, and running a hook's work
// so that a failure leaves its reason where a user will look.
import { appendFileSync, closeSync, constants, existsSync, fstatSync, openSync, readlinkSync, statSync, truncateSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { containerPaths, type ContainerPaths } from '../state/paths.js';
import { readState, type ThinState } from '../state/state.js';
import { formatError, UserError } from '../core/errors.js';
import { canonicalPath } from '../core/files.js';
import { containerLockName, lockHolder, withContainerLock } from '../core/lock.js';
import { quote } from '../core/validate.js';

export type HookType = 'pre-mount' | 'pre-start' | 'destroy' | 'start-host' | 'post-stop' | 'clone';

export interface HookContext {
  type: HookType;
  /** LXC_NAME: the name the container was started, copied or destroyed as. */
  name: string;
  /** LXC_CONFIG_FILE: the config LXC loaded for it. */
  configFile: string;
  rootfsPath: string;
  /**
   * LXC_PID, the container's init: the same for every hook of one start, another for the next start ('' when not
   * set: at pre-start there is no init yet).
   */
  generation: string;
  /** The thin container's directory, given as the hook's one argument in the config. */
  containerDir: string;
  /**
   * LXC_TARGET=reboot at post-stop: LXC starts the container again once its post-stop hooks are done (a later
   * start's hooks inherit the value, so it means something only at post-stop).
   */
  rebooting: boolean;
}

/** `expected`: the type, or the types (the mount hook runs at pre-mount, or at pre-start when unprivileged). */
export function parseHookContext(
  env: NodeJS.ProcessEnv,
  args: readonly string[],
  expected: HookType | readonly HookType[],
  hookFile: string,
): HookContext {
  const types: readonly HookType[] = typeof expected === 'string' ? [expected] : expected;
  // LXC sets LXC_HOOK_VERSION for start-time hooks but not for lxc.hook.destroy; LXC_HOOK_TYPE is set for both.
  if (env.LXC_HOOK_VERSION !== undefined && env.LXC_HOOK_VERSION !== '1') {
    throw new UserError(`${hookFile} needs lxc.hook.version = 1 in the container's config (got ${env.LXC_HOOK_VERSION})`);
  }
  const type = types.find((candidate) => candidate === env.LXC_HOOK_TYPE);
  if (type === undefined) {
    throw new UserError(`${hookFile} is a ${types.join(' or ')} hook, not ${env.LXC_HOOK_TYPE ?? 'unset'}: use it as ${types.map((candidate) => `lxc.hook.${candidate}`).join(' or ')}`);
  }
  const containerDir = args[0];
  if (!containerDir || args.length !== 1) {
    throw new UserError(`${hookFile} takes one argument, the thin container's directory: lxc.hook.${type} = node ${hookFile} /containers/ID`);
  }
  return {
    type,
    name: env.LXC_NAME ?? '',
    configFile: env.LXC_CONFIG_FILE ?? '',
    rootfsPath: env.LXC_ROOTFS_PATH ?? '',
    generation: env.LXC_PID ?? '',
    containerDir,
    rebooting: expected === 'post-stop' && env.LXC_TARGET === 'reboot',
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
  const config = canonicalPath(context.configFile);
  return config === canonicalPath(own.imageConfig) || config === canonicalPath(join(own.lxcpath, own.name, 'config'));
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

const HOOK_LOG = 'hook.log';
const HOOK_LOG_LIMIT = 64 * 1024;

export interface HookRun {
  context: HookContext;
  /** The thin container the hook line names; null when its directory is gone. */
  container: { state: ThinState; paths: ContainerPaths } | null;
  /** False when LXC runs the hook for a copy made with its own tools, which must not touch the original. */
  own: boolean;
}

/**
 * LXC captures a hook's stdout and stderr into its log at debug level only (lxc-start -l DEBUG -o FILE),
 * so a failure is also written to <container>/hook.log (the copy's own directory for a copy) and to the
 * stderr of the LXC tool that ran the hook, where a person is looking (lxc-copy, lxc-start -F).
 * `work` may return a note for LXC's log about something it chose not to do. With `lock`, it runs holding the
 * container's lock, the state read under it: a command changing or removing the container waits for it, or it
 * for the command (at most 20 s; then the hook fails, saying who holds the lock). `refuse` runs before that
 * wait, to fail at once where waiting cannot help; `skip`, to do nothing (its note says why) where it need not;
 * `unlocked`, to do its work without the lock (its note says why) where waiting cannot help and the work needs none.
 */
export function runHook(
  type: HookType | readonly HookType[],
  hookUrl: string,
  work: (run: HookRun) => string | void,
  options: {
    lock?: boolean;
    refuse?: (context: HookContext) => void;
    skip?: (context: HookContext) => string | undefined;
    unlocked?: (context: HookContext) => string | undefined;
  } = {},
): void {
  const hookFile = basename(hookUrl);
  let logDir: string | undefined;
  let shown = typeof type === 'string' ? type : type[0]!;
  try {
    const context = parseHookContext(process.env, process.argv.slice(2), type, hookFile);
    logDir = context.containerDir;
    shown = context.type;
    const act = () => {
      const run = hookRun(context);
      if (!run.own) logDir = context.configFile === '' ? undefined : dirname(context.configFile);
      return work(run);
    };
    options.refuse?.(context);
    const skipped = options.skip?.(context);
    const unlocked = skipped === undefined && options.lock ? options.unlocked?.(context) : undefined;
    if (unlocked) process.stdout.write(`thin-lxc: ${unlocked} (lxc.hook.${context.type} of ${context.name})\n`);
    const note = skipped ?? (options.lock && !unlocked ? withContainerLock(context.containerDir, `lxc.hook.${context.type} of ${context.name}`, act) : act());
    if (note) process.stdout.write(`thin-lxc: ${note} (lxc.hook.${context.type} of ${context.name})\n`);
  } catch (error) {
    const line = `${formatError(error, process.env.THIN_LXC_DEBUG === '1')} (lxc.hook.${shown} of ${process.env.LXC_NAME ?? '?'})`;
    process.stdout.write(`${line}\n`); // LXC logs stdout and stderr alike: once is enough
    tellCaller(`${line}\n`);
    if (logDir) appendHookLog(logDir, line);
    process.exitCode = 1;
  }
}

/** What `thin-lxc commit` writes as its purpose on the container's lock while it copies. */
export function commitPurpose(name: string, newBase: string): string {
  return `commit ${name} to ${newBase}`;
}

/**
 * Refuses a start while `thin-lxc commit` copies the container (for minutes): waiting for the lock would only
 * time out, and a start must not change the files being copied.
 */
export function refuseDuringCommit(context: HookContext): void {
  const commit = liveCommit(context);
  if (commit) throw new UserError(`${commit.name} is being committed to ${commit.image} by pid ${commit.pid}: wait for it or stop it`);
}

/**
 * The ephemeral hook while `thin-lxc commit` holds the lock keeps the container: commit copies it (for minutes:
 * waiting would only time out). LXC reports STOPPED, and closes the command socket commit looks at, before it runs
 * the post-stop hooks, so this may be a real stop that commit came right after: the container keeps its mark of a
 * start, and the sweep of the next thin-lxc command removes it. Or this stop ends a start the pre-mount hook refused.
 */
export function skipDuringCommit(context: HookContext): string | undefined {
  const commit = liveCommit(context);
  return commit ? `${commit.name} is being committed to ${commit.image} by pid ${commit.pid}: kept, for the next thin-lxc command to remove` : undefined;
}

/**
 * Ports-down while `thin-lxc commit` holds the lock removes this stop's forwarding without waiting for it (for
 * minutes: waiting would only time out). Commit sees a container stopped once LXC reports STOPPED, before LXC runs
 * the post-stop hooks, so this may be a real stop whose forwarding must go now (or one of a start the pre-mount hook
 * refused, which installed none). The lock is not needed for it: commit never touches forwarding, and the removal
 * checks under the 'iptables' lock that the record is still this start's (LXC_PID), not a newer start's.
 */
export function unlockedDuringCommit(context: HookContext): string | undefined {
  const commit = liveCommit(context);
  return commit ? `${commit.name} is being committed to ${commit.image} by pid ${commit.pid}: this stop is undone without its lock, which commit never needs for forwarding` : undefined;
}

function liveCommit(context: HookContext): { name: string; image: string; pid: number } | null {
  const holder = lockHolder(containerLockName(context.containerDir));
  const commit = holder === null ? null : /^commit (\S+) to (\S+)$/.exec(holder.purpose);
  return holder && commit ? { name: commit[1]!, image: commit[2]!, pid: holder.pid } : null;
}

function hookRun(context: HookContext): HookRun {
  if (!existsSync(context.containerDir)) return { context, container: null, own: true };
  const state = readState(context.containerDir);
  const paths = containerPaths(dirname(context.containerDir), basename(context.containerDir));
  return { context, container: { state, paths }, own: isOwnRun(context, { name: state.name, lxcpath: state.lxcpath, imageConfig: paths.config }) };
}

/**
 * The LXC tool that runs a hook is its parent (sh execs the hook line's command): a terminal, a pipe or a file
 * (`2>log`, appended to) there is where the person or script that ran lxc-copy or lxc-start -F reads. A
 * daemonised lxc-start has /dev/null. A socket (a systemd service's journal) cannot be opened through /proc.
 */
function tellCaller(text: string): void {
  try {
    // The pre-mount hook runs in the container's new pid namespace, where its parent is pid 1: the host's init in /proc.
    if (readlinkSync('/proc/self/ns/pid') !== readlinkSync(`/proc/${process.ppid}/ns/pid`)) return;
    const fd = openSync(`/proc/${process.ppid}/fd/2`, constants.O_WRONLY | constants.O_APPEND | constants.O_NOCTTY);
    try {
      const stat = fstatSync(fd);
      if (stat.isFIFO() || stat.isCharacterDevice() || stat.isFile()) writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  } catch {
    // No caller to tell: the log and hook.log have it.
  }
}

function appendHookLog(dir: string, line: string): void {
  const path = join(dir, HOOK_LOG);
  try {
    if (!existsSync(dir)) return;
    if (existsSync(path) && statSync(path).size > HOOK_LOG_LIMIT) truncateSync(path, 0);
    appendFileSync(path, `${new Date().toISOString()} ${line}\n`);
  } catch {
    // The log is a convenience; the failure itself is already reported through LXC.
  }
}

/** For hooks that must act: the thin container, refusing a copy made with LXC's tools and a directory that is gone. */
export function ownContainer({ context, container, own }: HookRun): { state: ThinState; paths: ContainerPaths } {
  if (!container) {
    throw new UserError(`thin container directory ${context.containerDir} is gone: remove what is left with lxc-destroy -n ${context.name}`);
  }
  if (!own) throw new UserError(`${copyRefusal(context.name, container.state.name)}, and remove this copy with lxc-destroy -n ${context.name}`);
  return container;
}
