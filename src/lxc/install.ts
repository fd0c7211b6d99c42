// This installation of thin-lxc: where it keeps its hooks and templates, the hook lines LXC runs them with,
// and whether the installation may be run as root.
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../core/errors.js';
import { validatePlainPath } from '../core/validate.js';

export const HOOK_NAMES = ['mount', 'destroy', 'clone', 'ports-up', 'ports-down', 'ephemeral'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

/** The config key LXC runs each hook under. */
export const HOOK_KEYS: Record<HookName, string> = {
  mount: 'lxc.hook.pre-mount',
  destroy: 'lxc.hook.destroy',
  clone: 'lxc.hook.clone',
  'ports-up': 'lxc.hook.start-host',
  'ports-down': 'lxc.hook.post-stop',
  ephemeral: 'lxc.hook.post-stop',
};

/** Which of thin-lxc's hooks a config value runs, by the hook file it names; null for anybody else's hook. */
export function thinHookOf(value: string): HookName | null {
  const name = /\/thin-lxc-([a-z-]+)\.js(\s|$)/.exec(value)?.[1];
  return (HOOK_NAMES as readonly string[]).includes(name ?? '') ? (name as HookName) : null;
}

/**
 * The hook lines a thin container needs. start-host (ports-up) only when it publishes ports or has an IPv6
 * address of its choosing to keep (see network/ipv6.ts, slaacToken), since it costs every start ~40 ms.
 * post-stop (ports-down) always: LXC reads hooks once at start, so a running container given ports by
 * thin-lxc update needs it there already to remove them at stop. The ephemeral hook comes after it, for
 * ephemeral containers.
 */
export function thinHooks(containerDir: string, needs: HookNeeds): { hook: HookName; key: string; command: string }[] {
  const wanted = (hook: HookName) => (hook === 'ports-up' ? needs.startHost : hook === 'ephemeral' ? needs.ephemeral : true);
  return HOOK_NAMES.filter(wanted).map((hook) => ({ hook, key: hookKey(hook, needs), command: hookCommand(hook, containerDir) }));
}

/**
 * An unprivileged container's union is mounted at pre-start, as host root in its monitor's own mount namespace
 * (lxc.monitor.unshare): its pre-mount hooks run as its root in its user namespace, which cannot idmap layers.
 */
export function hookKey(hook: HookName, needs: Pick<HookNeeds, 'unprivileged'>): string {
  return hook === 'mount' && needs.unprivileged ? 'lxc.hook.pre-start' : HOOK_KEYS[hook];
}

export interface HookNeeds {
  startHost: boolean;
  ephemeral: boolean;
  unprivileged: boolean;
}

/**
 * The words of a thin-lxc hook line that must exist for LXC to run it: `/usr/bin/env -u NAME... NODE HOOK DIR`
 * gives the node binary and the hook file.
 */
export function hookLineFiles(command: string): { node: string; hook: string } | null {
  const words = command.trim().split(/\s+/);
  const hookAt = words.findIndex((word) => thinHookOf(word) !== null);
  return hookAt >= 1 ? { node: words[hookAt - 1]!, hook: words[hookAt]! } : null;
}

let root: string | undefined;

/**
 * The installation's own directory, the one with thin-lxc's package.json: found from this code's file,
 * which is dist/bin/thin-lxc.js in the command and build/src/lxc/install.js in the tests.
 */
export function installationPath(...parts: string[]): string {
  if (root === undefined) {
    let dir = dirname(fileURLToPath(import.meta.url));
    while (!isThinLxcPackage(join(dir, 'package.json'))) {
      if (dirname(dir) === dir) throw new UserError(`thin-lxc's package.json is not above ${fileURLToPath(import.meta.url)}: reinstall thin-lxc`);
      dir = dirname(dir);
    }
    root = dir;
  }
  return join(root, ...parts);
}

function isThinLxcPackage(path: string): boolean {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { name?: string }).name === 'thin-lxc';
  } catch {
    return false;
  }
}

export function hookFile(hook: HookName): string {
  return installationPath('dist', 'hooks', `thin-lxc-${hook}.js`);
}

/**
 * Node variables a hook must not inherit from whoever ran lxc-start (LXC passes its environment on):
 * NODE_OPTIONS could load code or open an inspector in a process running as root, and
 * NODE_EXTRA_CA_CERTS makes every Node process parse a CA bundle at startup (~60 ms here) for TLS a hook never uses.
 */
const HOOK_UNSET = ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS'];
const ENV = '/usr/bin/env';

/**
 * LXC runs a hook line through sh with a sparse environment, so it names env, the node binary and the
 * hook by absolute path, and every word is a plain path that needs no quoting.
 */
function hookCommand(hook: HookName, containerDir: string): string {
  const node = validatePlainPath(process.execPath, 'node binary', 'install node under a plain path such as /usr/bin/node');
  const file = validatePlainPath(hookFile(hook), 'thin-lxc hook', 'install thin-lxc under a plain path such as /opt/thin-lxc');
  if (!existsSync(file)) throw new UserError(`hook ${file} is missing: build thin-lxc with npm run build`);
  if (!existsSync(ENV)) throw new UserError(`${ENV} is missing: install coreutils`);
  return [ENV, ...HOOK_UNSET.flatMap((name) => ['-u', name]), node, file, containerDir].join(' ');
}

export function thinLxcVersion(): string {
  return (JSON.parse(readFileSync(installationPath('package.json'), 'utf8')) as { version: string }).version;
}

/** What decides whether someone other than root can change a path: its owner, mode and type (from lstat). */
export interface Ownership {
  uid: number;
  mode: number;
  isDirectory: boolean;
  isSymbolicLink: boolean;
}

/**
 * Why someone other than root could change the path (or, for a directory, what is in it), or null. A symlink's
 * own mode means nothing: its directory decides who may replace it. `parent`: a root-owned sticky directory
 * (/tmp) is accepted, since others can neither rename nor remove root's entries in it, and the entry below is
 * checked in turn; thin-lxc's own files get no such leave.
 */
export function whoElseCanChange(stat: Ownership, parent: boolean): string | null {
  if (stat.uid !== 0) return `owned by uid ${stat.uid}, not root`;
  if (stat.isSymbolicLink || (stat.mode & 0o022) === 0) return null;
  if (parent && stat.isDirectory && (stat.mode & 0o1000) !== 0) return null;
  const by = [...((stat.mode & 0o020) !== 0 ? ['its group'] : []), ...((stat.mode & 0o002) !== 0 ? ['others'] : [])];
  return `writable by ${by.join(' and ')}`;
}

function ownershipOf(stat: Stats): Ownership {
  return { uid: stat.uid, mode: stat.mode, isDirectory: stat.isDirectory(), isSymbolicLink: stat.isSymbolicLink() };
}

/** The path and each directory above it, up to /. */
export function pathAndParents(path: string): string[] {
  const chain = [path];
  while (dirname(chain.at(-1)!) !== chain.at(-1)) chain.push(dirname(chain.at(-1)!));
  return chain;
}

/** The first of the path and its parents (as given, and as resolved through symlinks) that root does not alone control. */
function firstUnsafe(path: string): { path: string; problem: string } | null {
  for (const chain of [pathAndParents(path), pathAndParents(realpathSync(path))]) {
    for (const [index, candidate] of chain.entries()) {
      const problem = whoElseCanChange(ownershipOf(lstatSync(candidate)), index > 0);
      if (problem) return { path: candidate, problem };
    }
  }
  return null;
}

/**
 * Hooks run as root at every start, with the node binary and the installation that wrote their lines: if
 * anyone but root could change the node binary, the installation (its hooks, package.json, templates) or any
 * directory above them, they could run code as root. Refuse to reference such an installation or node.
 */
export function checkInstallation(): void {
  const install = installationPath();
  const fixInstall = 'or install thin-lxc owned by root: sudo ./quickstart.sh (it copies it to /usr/local/lib/thin-lxc), or npm install -g';
  const unsafeInstall = firstUnsafe(install);
  if (unsafeInstall) {
    throw new UserError(
      `${unsafeInstall.path} is ${unsafeInstall.problem}, and thin-lxc's hooks in ${install} run as root: ` +
        `chown root:root ${unsafeInstall.path} && chmod go-w ${unsafeInstall.path}, ${fixInstall}`,
    );
  }
  const node = process.execPath;
  const unsafeNode = firstUnsafe(node);
  if (unsafeNode) {
    throw new UserError(
      `${unsafeNode.path} is ${unsafeNode.problem}, and thin-lxc's hooks run ${node} as root: ` +
        `chown root:root ${unsafeNode.path} && chmod go-w ${unsafeNode.path}, or run thin-lxc with a node installed by root (such as /usr/bin/node)`,
    );
  }
  for (const part of ['package.json', 'dist', 'templates']) {
    const tree = installationPath(part);
    const unsafe = existsSync(tree) ? firstUnsafeIn(tree) : null;
    if (unsafe) throw new UserError(`${unsafe.path} is ${unsafe.problem}, and thin-lxc's hooks run it as root: chown -R root:root ${tree} && chmod -R go-w ${tree}, ${fixInstall}`);
  }
}

/** The first file or directory in the tree at `path` (itself included) that root does not alone control. */
export function firstUnsafeIn(path: string): { path: string; problem: string } | null {
  const stat = lstatSync(path);
  // A root-owned symlink passes whoElseCanChange, but what it points at (anyone's file) is what root would run.
  // The build makes no symlinks, so one here was put there: refuse it rather than check where it leads.
  if (stat.isSymbolicLink()) return { path, problem: 'a symlink, which thin-lxc never installs' };
  const problem = whoElseCanChange(ownershipOf(stat), false);
  if (problem) return { path, problem };
  if (stat.isDirectory()) {
    for (const entry of readdirSync(path)) {
      const unsafe = firstUnsafeIn(join(path, entry));
      if (unsafe) return unsafe;
    }
  }
  return null;
}
