// thin-lxc refresh: points existing thin containers' hook lines at this installation (node and thin-lxc),
// after node moved or was upgraded, or thin-lxc was reinstalled elsewhere or upgraded, and their limits at the
// host's cgroup version. Safe to repeat.
import { existsSync, readFileSync } from 'node:fs';
import { knownContainers } from '../container/containers.js';
import { readState } from '../container/state.js';
import { UserError } from '../core/errors.js';
import { writeFileAtomic } from '../core/files.js';
import { withContainerLock } from '../core/lock.js';
import { quote } from '../core/validate.js';
import { replaceEntries } from '../lxc/config.js';
import { checkInstallation, hookNeeds, thinHooks } from '../lxc/install.js';
import { hostCgroupVersion, isLimitOf, limitLines } from '../lxc/limits.js';
import { withHookLines } from '../lxc/render.js';
import { addDependent, isListed } from '../lxc/snapshots.js';
import type { Settings } from './settings.js';

export interface Refreshed {
  changed: string[];
  unchanged: string[];
}

/** The named thin containers, or all that thin-lxc knows of (the root's, and others registered in the lxcpath). */
export function refresh(names: readonly string[], settings: Settings, options: { dryRun?: boolean | undefined } = {}): Refreshed {
  checkInstallation();
  const known = knownContainers(settings.root, settings.lxcpath);
  const unknown = names.filter((name) => !known.some(({ state }) => state.name === name || state.id === name));
  if (unknown.length > 0) throw new UserError(`no thin container ${unknown.map(quote).join(', ')} in ${settings.root} or ${settings.lxcpath}: see thin-lxc list`);
  const chosen = names.length === 0 ? known : known.filter(({ state }) => names.includes(state.name) || names.includes(state.id));
  const result: Refreshed = { changed: [], unchanged: [] };
  for (const { state: listed, paths } of chosen) {
    // Read and rewritten under the container's lock, so that an update or a hook in between loses nothing.
    const changed = withContainerLock(paths.dir, `refresh ${listed.name}`, () => {
      const state = readState(paths.dir);
      const config = readFileSync(paths.config, 'utf8');
      const hooks = withHookLines(config, thinHooks(paths.dir, hookNeeds(state)));
      // A host moved from cgroup v1 to v2 (or back) since the container was made: its limits in the host's keys.
      const updated = replaceEntries(hooks, isLimitOf(state), limitLines(state, hostCgroupVersion()), 'Resource limits, for this host\'s cgroup version (thin-lxc refresh).');
      // A container made before thin-lxc listed its containers in their base's lxc_snapshots is listed now.
      const dependent = { lxcpath: state.lxcpath, name: state.name };
      const unlisted = existsSync(state.base) && !isListed(state.base, dependent);
      if (unlisted && !options.dryRun) addDependent(state.base, dependent);
      if (updated === config) return unlisted;
      if (!options.dryRun) writeFileAtomic(paths.config, updated, 0o644);
      return true;
    });
    (changed ? result.changed : result.unchanged).push(listed.name);
  }
  return result;
}

export function formatRefreshed({ changed, unchanged }: Refreshed, dryRun: boolean): string {
  const list = (names: readonly string[]) => (names.length ? `: ${names.join(', ')}` : '');
  return [
    `${dryRun ? 'Would point' : 'Pointed'} the hooks of ${changed.length} thin container(s) at this installation${list(changed)}.`,
    ...(unchanged.length ? [`Already current: ${unchanged.join(', ')}.`] : []),
    ...(changed.length && !dryRun ? ['Running ones use the new hooks from their next start.'] : []),
  ].join('\n');
}
