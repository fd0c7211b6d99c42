// What removing a thin container undoes on the host, shared by thin-lxc destroy and lxc-destroy's hook.
import { dependentsOf, isRealDirectory, readState, removeContainerDir } from './container.js';
import { release } from './dhcp.js';
import { UserError } from './errors.js';
import { removeForwarding } from './firewall.js';
import { containerTag } from './forward.js';

/** Rules left by a start whose post-stop never ran, the address reservation, then the directory. */
export function teardown(containerDir: string, expectedName?: string): void {
  if (!isRealDirectory(containerDir)) return removeContainerDir(containerDir, expectedName);
  const state = readState(containerDir);
  const dependents = dependentsOf(containerDir).map((other) => other.name);
  if (dependents.length > 0) {
    throw new UserError(`${state.name} is the base of thin containers ${dependents.join(', ')}: destroy them first`);
  }
  if (expectedName === undefined || state.name === expectedName) {
    if (state.publish.length > 0) removeForwarding(containerTag(containerDir));
    if (state.ip) release(state.name);
  }
  removeContainerDir(containerDir, expectedName);
}
