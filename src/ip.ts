// The ip command (iproute2): what thin-lxc asks of it beyond what /proc shows.
import { run } from './exec.js';

/** JSON of `ip -4 addr show dev NAME`. */
export function ipAddressesOf(device: string): string {
  return run('ip', ['-4', '-j', 'addr', 'show', 'dev', device]).stdout;
}

/** Forgets what the kernel knows of `address`'s link-layer address on `device` (permanent entries stay). */
export function ipNeighbourFlush(address: string, device: string): void {
  run('ip', ['neigh', 'flush', 'to', address, 'dev', device], { allowFailure: true });
}
