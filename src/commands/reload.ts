// thin-lxc reload (the original's `-a reload`): re-applies host-side state of running thin containers.
import { listViews } from './list.js';
import type { Settings } from '../settings.js';

/**
 * Union mounts are made by the pre-mount hook inside each container at every start, so after a
 * reboot there is nothing to re-mount; reload reports what it found and is safe to repeat.
 */
export function reload(settings: Settings): string {
  const running = listViews(settings).filter((v) => v.state === 'RUNNING');
  const names = running.map((v) => v.name).join(', ') || 'none';
  return `Nothing to re-apply: union mounts are made by each container's pre-mount hook at start. Running thin containers: ${names}.`;
}
