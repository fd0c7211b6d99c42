// The bridge's network as the kernel's /proc files show it.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bridgeName, bridgeOf, connectedRoutes, localAddresses } from '../../../src/network/bridge.js';
import { formatSubnet, toAddress } from '../../../src/network/ipv4.js';
import { fixture } from '../../helpers/paths.js';

// Both read off the reference machine: eth0 192.0.2.2/24 with a default route, lxcbr0 10.0.3.1/24.
const ROUTE = readFileSync(fixture('proc-net-route.txt'), 'utf8');
const FIB_TRIE = readFileSync(fixture('proc-net-fib_trie.txt'), 'utf8');

test('connected routes: interface and subnet of each gatewayless route, little-endian hex decoded', () => {
  assert.equal(
    connectedRoutes(ROUTE).map((route) => `${route.iface} ${formatSubnet(route.subnet)}`),
    ['lxcbr0 10.0.3.0/24', 'eth0 192.0.2.0/24'],
  );
});

test('routes that are down, go through a gateway or have a broken mask are not connected routes', () => {
  const header = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
  assert.equal(connectedRoutes(`${header}br9\t0003000A\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`), []);
  assert.equal(connectedRoutes(`${header}br9\t0003000A\t010200C0\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`), []);
  assert.equal(connectedRoutes(`${header}br9\t0003000A\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0\n`), []);
  assert.equal(connectedRoutes(`${header}br9\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n`).map((r) => formatSubnet(r.subnet)), ['192.168.0.0/16']);
});

test("the bridge of lxc.net.0 from the config entries the caller parsed: its last link when it is a veth, else none", () => {
  const veth = [
    { key: 'lxc.net.0.type', value: 'veth' },
    { key: 'lxc.net.0.link', value: 'lxcbr0' },
    { key: 'lxc.net.1.link', value: 'br1' },
    { key: 'lxc.net.0.link', value: 'br0' },
  ];
  assert.is(bridgeName(veth), 'br0');
  assert.is(bridgeName([{ key: 'lxc.net.0.type', value: 'veth' }]), null);
  assert.is(bridgeName([...veth, { key: 'lxc.net.0.type', value: 'macvlan' }]), null);
  assert.is(bridgeName([]), null);
});

test('local addresses: the /32 host LOCAL entries, once each', () => {
  assert.equal(localAddresses(FIB_TRIE).map(toAddress).sort(), ['10.0.3.1', '127.0.0.1', '192.0.2.2']);
});

test("the bridge's gateway and subnet; a bridge with no network up says how to fix it", () => {
  assert.equal(bridgeOf('lxcbr0', ROUTE, FIB_TRIE), { name: 'lxcbr0', gateway: '10.0.3.1', subnet: { network: 0x0a000300, prefix: 24 } });
  assert.throws(() => bridgeOf('br9', ROUTE, FIB_TRIE), /bridge br9 has no IPv4 network up: bring it up \(ip link set br9 up\), or restart lxc-net/);
});

test.run();
