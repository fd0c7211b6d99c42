// Where this installation of thin-lxc keeps its hooks, and the command lines LXC runs them with.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from './errors.js';
import { validatePlainPath } from './validate.js';

export type HookName = 'mount' | 'destroy' | 'ports-up' | 'ports-down';

export function hookFile(hook: HookName): string {
  return fileURLToPath(new URL(`../hooks/thin-lxc-${hook}.js`, import.meta.url));
}

/**
 * LXC runs a hook line through sh with a sparse environment, so it names the node binary and the
 * hook by absolute path, and every word is a plain path that needs no quoting.
 */
export function hookCommand(hook: HookName, containerDir: string): string {
  const node = validatePlainPath(process.execPath, 'node binary', 'install node under a plain path such as /usr/bin/node');
  const file = validatePlainPath(hookFile(hook), 'thin-lxc hook', 'install thin-lxc under a plain path such as /opt/thin-lxc');
  if (!existsSync(file)) throw new UserError(`hook ${file} is missing: build thin-lxc with npm run build`);
  return `${node} ${file} ${containerDir}`;
}

export function thinLxcVersion(): string {
  const packageJson = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
}
