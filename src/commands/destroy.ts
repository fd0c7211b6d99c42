// thin-lxc destroy: stops (with --force), unregisters from LXC and removes a thin container; never touches its base.
import { dependentsOf, findContainer } from '../container/containers.js';
import { teardown } from '../container/teardown.js';
import { lxcState, lxcStopNow } from '../core/commands.js';
import { UserError } from '../core/errors.js';
import { withLock } from '../core/lock.js';
import type { Settings } from './settings.js';

export function destroy(idOrName: string, options: { force?: boolean | undefined }, settings: Settings): string {
  const { state, paths } = findContainer(settings.root, idOrName, settings.lxcpath);
  // Checked before stopping anything; teardown checks again before it removes anything.
  const dependents = dependentsOf(paths.dir).map((other) => other.name);
  if (dependents.length > 0) {
    throw new UserError(`${state.name} is the base of thin containers ${dependents.join(', ')}: destroy them first`);
  }
  let lxc = lxcState(state.name, state.lxcpath);
  if (isActive(lxc)) {
    if (!options.force) {
      throw new UserError(`${state.name} is ${lxc.toLowerCase()}: stop it with lxc-stop -n ${state.name}, or use destroy --force`);
    }
    lxcStopNow(state.name, state.lxcpath);
    lxc = lxcState(state.name, state.lxcpath);
    if (isActive(lxc)) throw new UserError(`${state.name} is still ${lxc.toLowerCase()} after lxc-stop -k: stop it by hand first`);
  }
  withLock('create', () => teardown(paths.dir, { expectedName: state.name, unregister: true }));
  return `Destroyed thin container ${state.name} (id ${state.id}); base ${state.baseName} is untouched.`;
}

function isActive(state: string): boolean {
  return state !== 'STOPPED' && state !== 'UNKNOWN';
}
