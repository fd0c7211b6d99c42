// The DHCPRELEASE thin-lxc sends dnsmasq to end a lease, byte by byte (RFC 2131).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dhcpReleasePacket, dnsmasqPid, reservationLine, signalDnsmasq } from '../../../src/network/dhcp.js';

test('a DHCPRELEASE from the MAC for the address, to the server, with nothing else in it', () => {
  const packet = dhcpReleasePacket('10.0.3.67', '00:16:3e:0a:0b:0c', '10.0.3.1', 0x01020304);
  assert.is(packet.length, 300);
  assert.equal([...packet.subarray(0, 4)], [1, 1, 6, 0], 'BOOTREQUEST, Ethernet, 6-byte address, no hops');
  assert.is(packet.readUInt32BE(4), 0x01020304, 'transaction id');
  assert.equal([...packet.subarray(12, 16)], [10, 0, 3, 67], 'ciaddr: the address given up');
  assert.equal([...packet.subarray(16, 28)], new Array(12).fill(0), 'no yiaddr, siaddr or giaddr');
  assert.equal([...packet.subarray(28, 34)], [0x00, 0x16, 0x3e, 0x0a, 0x0b, 0x0c], 'chaddr');
  assert.is(packet.readUInt32BE(236), 0x63825363, 'magic cookie');
  assert.equal([...packet.subarray(240, 250)], [53, 1, 7, 54, 4, 10, 0, 3, 1, 255], 'DHCPRELEASE, server identifier, end');
});

test("a reservation names the container for DHCP and DNS, unless its name is no DNS label", () => {
  assert.is(reservationLine('00:16:3e:0a:0b:0c', '10.0.3.67', 'web1'), '00:16:3e:0a:0b:0c,10.0.3.67,web1\n');
  assert.is(reservationLine('00:16:3e:0a:0b:0c', '10.0.3.67', 'web_1'), '00:16:3e:0a:0b:0c,10.0.3.67\n');
  assert.is(reservationLine('00:16:3e:0a:0b:0c', '10.0.3.67', 'web.1'), '00:16:3e:0a:0b:0c,10.0.3.67\n', 'a dot would make it a domain');
  assert.is(reservationLine('00:16:3e:0a:0b:0c', '10.0.3.67', 'web-'), '00:16:3e:0a:0b:0c,10.0.3.67\n');
});

test("a pid file naming a live process that is not dnsmasq (its pid reused) is no dnsmasq: it gets no SIGHUP", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'thin-lxc-dnsmasq-'));
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  const ended = new Promise<NodeJS.Signals | null>((resolve) => sleeper.on('exit', (_code, signal) => resolve(signal)));
  let found: number | null;
  try {
    const pidFile = join(dir, 'dnsmasq.pid');
    writeFileSync(pidFile, `${sleeper.pid}\n`);
    signalDnsmasq(pidFile);
    found = dnsmasqPid(pidFile);
  } finally {
    // Pending signals are delivered lowest first: had it been sent, SIGHUP (1) ends it rather than SIGTERM (15).
    sleeper.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  assert.is(await ended, 'SIGTERM', 'the sleep was not sent SIGHUP');
  assert.is(found, null, 'no dnsmasq runs');
});

test.run();
