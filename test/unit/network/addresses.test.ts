import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assignMacs, checkAddress, chooseAddress, chooseAddress6, nextFreeAddress, randomMac, readdress6 } from '../../../src/network/addresses.js';
import type { ThinContainer } from '../../../src/state/paths.js';
import { parseSubnet6 } from '../../../src/network/ipv6.js';
import { type Bridge } from '../../../src/network/bridge.js';
import { formatSubnet, subnetOf, toAddress, toNumber } from '../../../src/network/ipv4.js';

const lxcbr0: Bridge = { name: 'lxcbr0', gateway: '10.0.3.1', subnet: subnetOf('10.0.3.1', 24), ipv6: null };
const message = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  return 'no error';
};

test('IPv4 arithmetic', () => {
  assert.is(toAddress(toNumber('10.0.3.67')), '10.0.3.67');
  assert.is(formatSubnet(subnetOf('192.168.77.9', 20)), '192.168.64.0/20');
  assert.is(toNumber('255.255.255.255'), 2 ** 32 - 1);
});

test('a requested address is checked against the subnet, its special addresses and the ones in use', () => {
  assert.is(checkAddress('10.0.3.67', lxcbr0, []), '10.0.3.67');
  assert.is(message(() => checkAddress('10.0.4.2', lxcbr0, [])), "ip 10.0.4.2 is outside lxcbr0's subnet 10.0.3.0/24: choose one inside it, or leave --ip out");
  assert.is(message(() => checkAddress('10.0.3.0', lxcbr0, [])), 'ip 10.0.3.0 is the network address of 10.0.3.0/24: choose another, or leave --ip out');
  assert.is(message(() => checkAddress('10.0.3.255', lxcbr0, [])), 'ip 10.0.3.255 is the broadcast address of 10.0.3.0/24: choose another, or leave --ip out');
  assert.is(message(() => checkAddress('10.0.3.1', lxcbr0, [])), "ip 10.0.3.1 is the gateway (lxcbr0's own address) of 10.0.3.0/24: choose another, or leave --ip out");
  assert.is(
    message(() => checkAddress('10.0.3.9', lxcbr0, [{ address: '10.0.3.9', holder: 'running container db' }])),
    'ip 10.0.3.9 is already used by running container db: choose another, or leave --ip out',
  );
});

test("a requested address is checked against the running LXC containers' addresses the caller gives; the replaced container's own is free", () => {
  // A benchmarking network (RFC 2544) that no reservation of the host's holds; a name no reservation has.
  const bench: Bridge = { name: 'tlt-unit0', gateway: '198.18.0.1', subnet: subnetOf('198.18.0.1', 24), ipv6: null };
  const name = `tlt-unit-${process.pid}`;
  const running = () => [{ address: '198.18.0.9', holder: `running container ${name}` }, { address: '198.18.0.8', holder: 'running container db' }];
  assert.is(
    message(() => chooseAddress(name, '198.18.0.8', bench, [], running)),
    'ip 198.18.0.8 is already used by running container db: choose another, or leave --ip out',
  );
  assert.is(
    message(() => chooseAddress(name, '198.18.0.9', bench, [], running)),
    `ip 198.18.0.9 is already used by running container ${name}: choose another, or leave --ip out`,
  );
  assert.is(chooseAddress(name, '198.18.0.9', bench, [], running, { name, ip: '198.18.0.9' }), '198.18.0.9');
  assert.is(chooseAddress(name, '198.18.0.7', bench, [], running), '198.18.0.7');
});

test('automatic addresses count down from the top of the subnet, skipping the ones in use', () => {
  assert.is(nextFreeAddress(lxcbr0, []), '10.0.3.254');
  assert.is(nextFreeAddress(lxcbr0, [{ address: '10.0.3.254', holder: 'x' }, { address: '10.0.3.253', holder: 'y' }]), '10.0.3.252');
});

test('a full subnet says so', () => {
  const tiny: Bridge = { name: 'br9', gateway: '10.9.0.1', subnet: subnetOf('10.9.0.1', 30), ipv6: null };
  assert.is(nextFreeAddress(tiny, []), '10.9.0.2');
  assert.is(message(() => nextFreeAddress(tiny, [{ address: '10.9.0.2', holder: 'x' }])), "no free address left in br9's subnet 10.9.0.0/30: destroy a thin container or widen the subnet");
});

test("MAC addresses use LXC's prefix and avoid the ones taken", () => {
  assert.is(randomMac(() => Uint8Array.of(1, 171, 255)), '00:16:3e:01:ab:ff');
  const values = [1, 1, 2, 3];
  const sequence = () => Uint8Array.of(0, 0, values.shift() ?? 9);
  assert.equal(assignMacs([0, 1], new Set(['00:16:3e:00:00:01']), sequence), { 0: '00:16:3e:00:00:02', 1: '00:16:3e:00:00:03' });
});

test('IPv6: the address SLAAC gives its MAC, or the one asked for, checked; none without IPv6', () => {
  const dual: Bridge = { ...lxcbr0, ipv6: { gateway: 'fd42:7a3b:1c00::1', subnet: parseSubnet6('fd42:7a3b:1c00::/64')! } };
  const mac = '00:16:3e:0a:0b:0c';
  const holder = { state: { name: 'web1', ip6: 'fd42:7a3b:1c00:0:216:3eff:fe0a:b0c' } } as ThinContainer;
  assert.is(chooseAddress6(null, mac, dual, []), 'fd42:7a3b:1c00:0:216:3eff:fe0a:b0c');
  assert.is(chooseAddress6('fd42:7a3b:1c00::99', mac, dual, []), 'fd42:7a3b:1c00::99');
  assert.is(chooseAddress6(null, mac, dual, [holder]), 'fd42:7a3b:1c00::2', 'taken: the lowest free instead');
  assert.is(message(() => chooseAddress6('fd42:7a3b:1c00:0:216:3eff:fe0a:b0c', mac, dual, [holder])), 'ip6 fd42:7a3b:1c00:0:216:3eff:fe0a:b0c is already used by thin container web1: choose another, or leave --ip6 out');
  assert.is(message(() => chooseAddress6('fd42:7a3b:1c00::1', mac, dual, [])), "ip6 fd42:7a3b:1c00::1 is already used by the gateway (lxcbr0's own address): choose another, or leave --ip6 out");
  assert.is(message(() => chooseAddress6('fd00::5', mac, dual, [])), "ip6 fd00::5 is outside lxcbr0's IPv6 network fd42:7a3b:1c00::/64: choose one inside it");
  assert.is(chooseAddress6(null, mac, lxcbr0, []), null);
  assert.is(message(() => chooseAddress6('fd42::5', mac, lxcbr0, [])), 'lxcbr0 has no IPv6 network for --ip6 fd42::5: give it one with thin-lxc setup --ipv6, or leave --ip6 out');
});

test("IPv6 after the bridge's prefix changed: the same interface identifier in the new network, another if taken; nothing inside or without IPv6", () => {
  const moved: Bridge = { ...lxcbr0, ipv6: { gateway: 'fd99:1:2::1', subnet: parseSubnet6('fd99:1:2::/64')! } };
  const hwaddrs = { 0: '00:16:3e:0a:0b:0c' };
  assert.is(readdress6({ ip6: 'fd42:7a3b:1c00:0:216:3eff:fe0a:b0c', hwaddrs }, moved, []), 'fd99:1:2:0:216:3eff:fe0a:b0c', 'still its SLAAC address');
  assert.is(readdress6({ ip6: 'fd42:7a3b:1c00::99', hwaddrs }, moved, []), 'fd99:1:2::99', 'a chosen one keeps its token');
  const holder = { state: { name: 'web1', ip6: 'fd99:1:2::99' } } as ThinContainer;
  assert.is(readdress6({ ip6: 'fd42:7a3b:1c00::99', hwaddrs }, moved, [holder]), 'fd99:1:2:0:216:3eff:fe0a:b0c', 'taken: its SLAAC one instead');
  assert.is(readdress6({ ip6: 'fd42:7a3b:1c00::1', hwaddrs }, moved, []), 'fd99:1:2:0:216:3eff:fe0a:b0c', 'never the gateway');
  assert.is(readdress6({ ip6: 'fd99:1:2::7', hwaddrs }, moved, []), null, 'inside: nothing to do');
  assert.is(readdress6({ ip6: null, hwaddrs }, moved, []), null);
  assert.is(readdress6({ ip6: 'fd42:7a3b:1c00::99', hwaddrs }, lxcbr0, []), null, 'a bridge without IPv6 has no network to move it into');
});

test.run();
