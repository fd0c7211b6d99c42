// Which host sockets a published port would take packets from, read from /proc/net as the kernel prints it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkPublishConflicts, describeClash, parseProcNet, portClashes, takesFrom } from '../../../src/forward/ports.js';
import { parsePublish } from '../../../src/core/validate.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const line = (local: string, remote: string, state: string, inode: string) =>
  `   0: ${local} ${remote} ${state} 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;

const TCP = HEADER + line('00000000:0016', '00000000:0000', '0A', '101') + line('0100007F:1F90', '00000000:0000', '0A', '102') + line('0100007F:1F91', '0100007F:D431', '01', '103');
const TCP6 = HEADER + line('00000000000000000000000000000000:01BB', '00000000000000000000000000000000:0000', '0A', '104') +
  line('00000000000000000000000001000000:2328', '00000000000000000000000000000000:0000', '0A', '105') +
  line('0000000000000000FFFF00000100007F:2329', '00000000000000000000000000000000:0000', '0A', '106');
const UDP = HEADER + line('0103000A:0035', '00000000:0000', '07', '107') + line('0100007F:A000', '0100007F:0035', '01', '108');

test('listening TCP sockets and bound, unconnected UDP sockets, with their addresses', () => {
  assert.equal(parseProcNet(TCP, 'tcp'), [
    { protocol: 'tcp', address: '0.0.0.0', port: 22, inode: '101' },
    { protocol: 'tcp', address: '127.0.0.1', port: 8080, inode: '102' },
  ]);
  assert.equal(parseProcNet(TCP6, 'tcp').map((l) => `${l.address} ${l.port}`), [':: 443', '::1 9000', '::ffff:127.0.0.1 9001']);
  assert.equal(parseProcNet(UDP, 'udp'), [{ protocol: 'udp', address: '10.0.3.1', port: 53, inode: '107' }]);
});

test('a published port takes from listeners on any address, on the address it is bound to, and on IPv6 any', () => {
  const listeners = [...parseProcNet(TCP, 'tcp'), ...parseProcNet(TCP6, 'tcp'), ...parseProcNet(UDP, 'udp')];
  const takes = (spec: string) => listeners.filter((listener) => takesFrom(parsePublish(spec), listener)).map((l) => `${l.address}:${l.port}/${l.protocol}`);
  assert.equal(takes('22:22'), ['0.0.0.0:22/tcp']);
  assert.equal(takes('8080:80'), ['127.0.0.1:8080/tcp'], 'its DNAT catches 127.0.0.1 too');
  assert.equal(takes('10.0.3.1:8080:80'), [], 'bound to another address');
  assert.equal(takes('127.0.0.1:8080:80'), ['127.0.0.1:8080/tcp']);
  assert.equal(takes('443:443'), [':::443/tcp'], 'IPv6 any takes IPv4 too');
  assert.equal(takes('9000:80'), [], 'IPv6 loopback only: no forwarding reaches it');
  assert.equal(takes('0.0.0.0:443:443'), [':::443/tcp'], 'a socket on :: takes IPv4 too (unless IPV6_V6ONLY)');
  assert.equal(takes('[::]:22:22'), [], 'IPv6 only: an IPv4 socket is not in its way');
  assert.equal(takes('[::]:443:443'), [':::443/tcp']);
  assert.equal(takes('9001:80'), ['::ffff:127.0.0.1:9001/tcp']);
  assert.equal(takes('53:53/udp'), ['10.0.3.1:53/udp'], "lxc-net's dnsmasq: its containers' DNS would go to the container");
  assert.equal(takes('8000-8100:8000-8100'), ['127.0.0.1:8080/tcp'], 'ranges');
  assert.equal(takes('22:22/udp'), []);
});

test('a clash names the process, its pid and where it listens', () => {
  const listeners = parseProcNet(TCP, 'tcp').map((listener) => ({ ...listener, inode: 'no-such-inode' }));
  const [clash] = portClashes([parsePublish('22:2222')], listeners);
  assert.is(describeClash(clash!), 'host port 22/tcp (of 22:2222/tcp) is in use by a socket of another namespace or the kernel (inode no-such-inode), listening on 0.0.0.0:22');
  assert.equal(portClashes([], listeners), []);
});

test('a host port is published once per family and address: IPv4-only and IPv6-only publishes of one port do not clash', () => {
  const others = (publish: string) => [{ name: 'web1', publish: [publish] }];
  const clash = (wanted: string, theirs: string) => {
    try {
      checkPublishConflicts([parsePublish(wanted)], others(theirs));
      return false;
    } catch {
      return true;
    }
  };
  assert.not.ok(clash('0.0.0.0:8080:80', '[::]:8080:80'));
  assert.ok(clash('8080:80', '[::]:8080:80'), 'both families take the IPv6 one too');
  assert.ok(clash('[2001:db8::1]:8080:80', '[::]:8080:80'));
  assert.not.ok(clash('[2001:db8::1]:8080:80', '[2001:db8::2]:8080:80'));
  assert.not.ok(clash('127.0.0.1:8080:80', '[2001:db8::2]:8080:80'));
});

test.run();
