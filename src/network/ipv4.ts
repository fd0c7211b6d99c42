// IPv4 arithmetic on plain numbers: subnets, their special addresses, and membership.
import { validateIPv4 } from '../core/validate.js';

export interface Subnet {
  /** The network address, e.g. 10.0.3.0. */
  network: number;
  prefix: number;
}

export function toNumber(address: string): number {
  return validateIPv4(address)
    .split('.')
    .reduce((value, part) => value * 256 + Number(part), 0);
}

export function toAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export function subnetOf(address: string, prefix: number): Subnet {
  const size = 2 ** (32 - prefix);
  return { network: Math.floor(toNumber(address) / size) * size, prefix };
}

export function broadcastOf(subnet: Subnet): number {
  return subnet.network + 2 ** (32 - subnet.prefix) - 1;
}

export function contains(subnet: Subnet, value: number): boolean {
  return value >= subnet.network && value <= broadcastOf(subnet);
}

export function formatSubnet(subnet: Subnet): string {
  return `${toAddress(subnet.network)}/${subnet.prefix}`;
}
