// Runs a hook's work and, when it fails, leaves the reason where a user will look for it.
import { appendFileSync, existsSync, statSync, truncateSync } from 'node:fs';
import { basename, join } from 'node:path';
import { formatError } from './errors.js';
import { parseHookContext, type HookContext, type HookType } from './hook-context.js';
import { writeErr, writeOut } from './output.js';

const HOOK_LOG = 'hook.log';
const HOOK_LOG_LIMIT = 64 * 1024;

/**
 * LXC logs a hook's stdout (at debug level: lxc-start -l DEBUG -o FILE) and drops its stderr, so a
 * failure is written to stdout and to <container>/hook.log, which thin-lxc show prints.
 */
export function runHook(type: HookType, hookUrl: string, work: (context: HookContext) => void): void {
  const hookFile = basename(hookUrl);
  let containerDir: string | undefined;
  try {
    const context = parseHookContext(process.env, process.argv.slice(2), type, hookFile);
    containerDir = context.containerDir;
    work(context);
  } catch (error) {
    const line = `${formatError(error, process.env.THIN_LXC_DEBUG === '1')} (lxc.hook.${type} of ${process.env.LXC_NAME ?? '?'})`;
    writeOut(`${line}\n`);
    writeErr(`${line}\n`);
    if (containerDir) appendHookLog(containerDir, line);
    process.exitCode = 1;
  }
}

function appendHookLog(containerDir: string, line: string): void {
  const path = join(containerDir, HOOK_LOG);
  try {
    if (!existsSync(containerDir)) return;
    if (existsSync(path) && statSync(path).size > HOOK_LOG_LIMIT) truncateSync(path, 0);
    appendFileSync(path, `${new Date().toISOString()} ${line}\n`);
  } catch {
    // The log is a convenience; the failure itself is already reported through LXC.
  }
}
