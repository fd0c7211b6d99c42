// thin-lxc destroy: stops (with --force), unregisters from LXC and removes a thin container; never touches its base.
import { dependentNames, findContainer } from '../container/containers.js';
import { type ThinContainer } from '../state/paths.js';
import { teardown } from '../lifecycle/teardown.js';
import { lxcState, lxcStopNow } from '../core/commands.js';
import { UserError } from '../core/errors.js';
import { withContainerLock, withLock } from '../core/lock.js';
import { isRunning } from '../lxc/lxcpath.js';
import type { Settings } from './settings.js';

export interface Destroyed {
  changed: boolean;
  name: string;
  message: string;
}

/**
 * With --force, a container that is not there is no error (changed: false), as `rm -f` and configuration
 * management expect; without it, a typo is one.
 */
export function destroy(idOrName: string, options: { force?: boolean | undefined; dryRun?: boolean | undefined }, settings: Settings): Destroyed {
  let found: ThinContainer;
  try {
    found = findContainer(settings.root, idOrName, settings.lxcpath);
  } catch (error) {
    if (options.force && error instanceof UserError) return { changed: false, name: idOrName, message: `No thin container ${idOrName}: nothing to destroy.` };
    throw error;
  }
  const { state, paths } = found;
  // Checked before stopping anything; teardown checks again before it removes anything.
  const dependents = dependentNames(paths.dir, state);
  if (dependents.length > 0) {
    throw new UserError(`${state.name} is the base of thin containers ${dependents.join(', ')}: destroy them first`);
  }
  let lxc = lxcState(state.name, state.lxcpath);
  if (isActive(lxc) && !options.force) {
    throw new UserError(`${state.name} is ${lxc.toLowerCase()}: stop it with lxc-stop -n ${state.name}, or use destroy --force`);
  }
  if (options.dryRun) {
    return { changed: true, name: state.name, message: `Would ${isActive(lxc) ? 'stop and ' : ''}destroy thin container ${state.name} (id ${state.id}, ${paths.dir}).` };
  }
  if (isActive(lxc)) {
    lxcStopNow(state.name, state.lxcpath);
    lxc = lxcState(state.name, state.lxcpath);
    if (isActive(lxc)) throw new UserError(`${state.name} is still ${lxc.toLowerCase()} after lxc-stop -k: stop it by hand first`);
  }
  // Stopped outside the container's lock: lxc-stop returns after the post-stop hooks, which take it. Under it, a
  // start that came in between is seen by its monitor's socket (asking LXC would wait for that start's hooks,
  // which wait for this lock); a start after it finds the directory gone, and is refused by its pre-mount hook.
  withContainerLock(paths.dir, `destroy ${state.name}`, () => {
    if (isRunning(state.lxcpath, state.name)) {
      throw new UserError(`${state.name} was started while destroy waited: stop it with lxc-stop -n ${state.name}, then destroy it again`);
    }
    withLock('create', () => teardown(paths.dir, { expectedName: state.name, unregister: true }));
  });
  return { changed: true, name: state.name, message: `Destroyed thin container ${state.name} (id ${state.id}); base ${state.baseName} is untouched.` };
}

function isActive(state: string): boolean {
  return state !== 'STOPPED' && state !== 'UNKNOWN';
}
