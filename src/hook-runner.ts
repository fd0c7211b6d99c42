// Runs a hook's work for the thin container it belongs to and, when it fails, leaves the reason where a
// user will look for it.
import { appendFileSync, closeSync, constants, existsSync, fstatSync, openSync, readlinkSync, statSync, truncateSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { containerPaths, readState, type ContainerPaths, type ThinState } from './container.js';
import { UserError, formatError } from './errors.js';
import { copyRefusal, isOwnRun, parseHookContext, type HookContext, type HookType } from './hook-context.js';
import { writeOut } from './output.js';

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
 * `work` may return a note for LXC's log about something it chose not to do.
 */
export function runHook(type: HookType, hookUrl: string, work: (run: HookRun) => string | void): void {
  const hookFile = basename(hookUrl);
  let logDir: string | undefined;
  try {
    const context = parseHookContext(process.env, process.argv.slice(2), type, hookFile);
    logDir = context.containerDir;
    const run = hookRun(context);
    if (!run.own) logDir = context.configFile === '' ? undefined : dirname(context.configFile);
    const note = work(run);
    if (note) writeOut(`thin-lxc: ${note} (lxc.hook.${type} of ${context.name})\n`);
  } catch (error) {
    const line = `${formatError(error, process.env.THIN_LXC_DEBUG === '1')} (lxc.hook.${type} of ${process.env.LXC_NAME ?? '?'})`;
    writeOut(`${line}\n`); // LXC logs stdout and stderr alike: once is enough
    tellCaller(`${line}\n`);
    if (logDir) appendHookLog(logDir, line);
    process.exitCode = 1;
  }
}

function hookRun(context: HookContext): HookRun {
  if (!existsSync(context.containerDir)) return { context, container: null, own: true };
  const state = readState(context.containerDir);
  const paths = containerPaths(dirname(context.containerDir), basename(context.containerDir));
  return { context, container: { state, paths }, own: isOwnRun(context, { name: state.name, lxcpath: state.lxcpath, imageConfig: paths.config }) };
}

/**
 * The LXC tool that runs a hook is its parent (sh execs the hook line's command): a terminal or a pipe there
 * is where the person or script that ran lxc-copy or lxc-start -F reads. A daemonised lxc-start has /dev/null.
 */
function tellCaller(text: string): void {
  try {
    // The pre-mount hook runs in the container's new pid namespace, where its parent is pid 1: the host's init in /proc.
    if (readlinkSync('/proc/self/ns/pid') !== readlinkSync(`/proc/${process.ppid}/ns/pid`)) return;
    const fd = openSync(`/proc/${process.ppid}/fd/2`, constants.O_WRONLY | constants.O_APPEND | constants.O_NOCTTY);
    try {
      const stat = fstatSync(fd);
      if (stat.isFIFO() || stat.isCharacterDevice()) writeSync(fd, text);
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
