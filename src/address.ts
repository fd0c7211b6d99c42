// Choosing a thin container's static address on the bridge: checking a requested one, or picking the next free one.
import { UserError } from './errors.js';
import { broadcastOf, contains, formatSubnet, toAddress, toNumber, type Subnet } from './ipv4.js';

export interface Bridge {
  name: string;
  /** The bridge's own address: the containers' gateway. */
  gateway: string;
  subnet: Subnet;
}

export interface AddressUse {
  address: string;
  /** Who holds it, for the message: "thin container web1", "running container db". */
  holder: string;
}

export function checkAddress(requested: string, bridge: Bridge, inUse: readonly AddressUse[]): string {
  const value = toNumber(requested);
  const range = formatSubnet(bridge.subnet);
  if (!contains(bridge.subnet, value)) {
    throw new UserError(`ip ${requested} is outside ${bridge.name}'s subnet ${range}: choose one inside it, or leave --ip out`);
  }
  const special =
    value === bridge.subnet.network
      ? 'the network address'
      : value === broadcastOf(bridge.subnet)
        ? 'the broadcast address'
        : requested === bridge.gateway
          ? `the gateway (${bridge.name}'s own address)`
          : null;
  if (special) throw new UserError(`ip ${requested} is ${special} of ${range}: choose another, or leave --ip out`);
  const holder = inUse.find((use) => use.address === requested)?.holder;
  if (holder) throw new UserError(`ip ${requested} is already used by ${holder}: choose another, or leave --ip out`);
  return requested;
}

/**
 * The next free address, counting down from the top of the subnet: lxc-net's dnsmasq leases from
 * the bottom, so static addresses and dynamic leases meet as late as possible.
 */
export function nextFreeAddress(bridge: Bridge, inUse: readonly AddressUse[]): string {
  const used = new Set([...inUse.map((use) => use.address), bridge.gateway]);
  for (let value = broadcastOf(bridge.subnet) - 1; value > bridge.subnet.network; value--) {
    const address = toAddress(value);
    if (!used.has(address)) return address;
  }
  throw new UserError(`no free address left in ${bridge.name}'s subnet ${formatSubnet(bridge.subnet)}: destroy a thin container or widen the subnet`);
}
