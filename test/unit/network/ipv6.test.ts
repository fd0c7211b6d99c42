// IPv6 text and arithmetic: parsing every form an address is written in, RFC 5952's canonical form, networks,
// a container's address from its IPv4 one, ULA prefixes, and the bridge's network from /proc/net/if_inet6.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatIPv6, parseIPv6, validateIPv6 } from '../../../src/core/validate.js';
import { ipv6Of } from '../../../src/network/bridge.js';
import { contains6, formatSubnet6, linkWithMac, parseSubnet6, randomUlaPrefix, slaacAddress, slaacToken } from '../../../src/network/ipv6.js';

test('parsing and the canonical text (RFC 5952)', () => {
  for (const [text, canonical] of [
    ['::', '::'],
    ['::1', '::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
    ['fd42:7a3b:1c00::10.0.3.67', 'fd42:7a3b:1c00::a00:343'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:0:3:4:5:6:7:8', '1:0:3:4:5:6:7:8'],
  ]) {
    assert.is(validateIPv6(text!), canonical, text);
  }
  for (const bad of ['', ':', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '1:2:3:4:5:6:7', '::1%eth0', 'fd42::/64', '::256.0.0.1', '1.2.3.4', 'fd42::\nlxc.x=1']) {
    assert.is(parseIPv6(bad), null, JSON.stringify(bad));
  }
  assert.throws(() => validateIPv6('fd42::zz'), /ip6 "fd42::zz" is not an IPv6 address: write it like fd42:7a3b:1c00::43/);
  assert.is(formatIPv6(parseIPv6('0:0:1:0:0:0:1:0')!), '0:0:1::1:0', 'the longest zero run is the one compressed');
});

test("networks, and the address SLAAC gives a MAC", () => {
  const net = parseSubnet6('fd42:7a3b:1c00::/64')!;
  assert.is(formatSubnet6(net), 'fd42:7a3b:1c00::/64');
  assert.ok(contains6(net, parseIPv6('fd42:7a3b:1c00::a00:343')!));
  assert.not.ok(contains6(net, parseIPv6('fd42:7a3b:1c01::1')!));
  assert.is(parseSubnet6('fd42:7a3b:1c00::1/64'), null, 'host bits set: not a network');
  assert.is(parseSubnet6('fd42::'), null, 'no prefix length');
  // What the kernel made in a container with this MAC on a /64 (see docs/networking.md, IPv6).
  assert.is(formatIPv6(slaacAddress(parseSubnet6('fd50:cc47:3a80::/64')!, '00:16:3e:12:34:56')!), 'fd50:cc47:3a80:0:216:3eff:fe12:3456');
  assert.is(slaacAddress(parseSubnet6('fd42::/112')!, '00:16:3e:12:34:56'), null, 'SLAAC needs a /64');
});

test('a ULA prefix: fd, 40 random bits, subnet 0, /64', () => {
  const prefix = randomUlaPrefix(() => Uint8Array.from([0x12, 0x34, 0x56, 0x78, 0x9a]));
  assert.is(formatSubnet6(prefix), 'fd12:3456:789a::/64');
  assert.is.not(formatSubnet6(randomUlaPrefix()), formatSubnet6(randomUlaPrefix()));
});

test("the bridge's IPv6 network: its global address, not a link-local one, one that failed DAD or another interface's", () => {
  const table = [
    'fe800000000000000216003efffe0000 0b 40 20 80 lxcbr0',
    'fd427a3b1c0000000000000000000009 0b 40 00 c8 lxcbr0',
    'fd427a3b1c0000000000000000000001 0b 40 00 80 lxcbr0',
    'fd000000000000000000000000000002 04 40 00 80 eth0',
  ].join('\n');
  const found = ipv6Of('lxcbr0', table);
  assert.equal(found && { gateway: found.gateway, subnet: formatSubnet6(found.subnet) }, { gateway: 'fd42:7a3b:1c00::1', subnet: 'fd42:7a3b:1c00::/64' });
  assert.is(ipv6Of('br9', table), null);
});

test('the SLAAC token of an address of its own choosing, none for the MAC-made one; the interface by its MAC', () => {
  assert.is(slaacToken('fd50:cc47:3a80::4242', 'fd50:cc47:3a80::/64', '00:16:3e:12:34:56'), '::4242');
  assert.is(slaacToken('fd50:cc47:3a80:0:216:3eff:fe12:3456', 'fd50:cc47:3a80::/64', '00:16:3e:12:34:56'), null);
  assert.is(slaacToken('fd42::4242', 'fd42::/112', '00:16:3e:12:34:56'), null, 'no SLAAC off a /64');
  const links = [
    '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00',
    '2: eth0@if3285: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 00:16:3e:78:6b:dd brd ff:ff:ff:ff:ff:ff link-netnsid 0',
  ].join('\n');
  assert.is(linkWithMac(links, '00:16:3E:78:6B:DD'), 'eth0');
  assert.is(linkWithMac(links, '00:16:3e:00:00:01'), null);
});

test.run();
