import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UserError } from '../../../src/core/errors.js';
import {
  parseSize,
  validateCpus,
  validateDisk,
  validateMemory,
  validateTmpfsSize,
  formatPublish,
  parseMount,
  parsePublish,
  splitList,
  validateIPv4,
  validateName,
  validatePlainPath,
} from '../../../src/core/validate.js';

function userErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.instance(error, UserError);
    return (error as Error).message;
  }
  throw new Error('expected a UserError');
}

test('names: ordinary container names pass', () => {
  for (const name of ['web1', 'myContainer', 'base_CN', 'a', 'app.v2', 'x'.repeat(63)]) assert.is(validateName(name, 'name'), name);
});

test('names: anything that could break a config line, a path or a hostname is refused', () => {
  for (const name of ['', ' ', 'a b', 'a/b', '..', 'a..b', '-x', '.x', 'a\nlxc.hook.start = /bin/sh', 'tab\tx', 'x'.repeat(64), 'é']) {
    assert.ok(userErrorOf(() => validateName(name, 'name')).startsWith('name '), name);
  }
});

test('names: the message shows the bad value escaped and how to fix it', () => {
  assert.is(
    userErrorOf(() => validateName('a\nb', 'name')),
    `name "a\\nb" is not allowed: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
  );
  assert.is(userErrorOf(() => validateName('', 'id')).split(':')[0], 'id is empty');
});

test('IPv4 addresses', () => {
  assert.is(validateIPv4('10.0.3.67'), '10.0.3.67');
  for (const bad of ['10.0.3', '10.0.3.256', '010.0.3.1', '10.0.3.1 ', 'a.b.c.d', '10.0.3.1\n']) {
    assert.is(userErrorOf(() => validateIPv4(bad)), `ip ${JSON.stringify(bad)} is not an IPv4 address: write it like 10.0.3.67`);
  }
});

test('publish: the forms an LXC user writes', () => {
  assert.is(formatPublish(parsePublish('3000:3010')), '3000:3010/tcp');
  assert.is(formatPublish(parsePublish('127.0.0.1:8080:80')), '127.0.0.1:8080:80/tcp');
  assert.is(formatPublish(parsePublish('5000-5002:6000-6002/udp')), '5000-5002:6000-6002/udp');
});

test('publish on IPv6: both families without an address, one with 0.0.0.0 or [::], one address in brackets; [::1] refused', () => {
  assert.equal([parsePublish('8080:80').family, parsePublish('8080:80').hostIp], [null, null]);
  assert.equal([parsePublish('0.0.0.0:8080:80').family, parsePublish('0.0.0.0:8080:80').hostIp], [4, null]);
  assert.equal([parsePublish('[::]:8080:80').family, parsePublish('[::]:8080:80').hostIp], [6, null]);
  assert.equal([parsePublish('[2001:DB8::0001]:8080:80').family, parsePublish('[2001:DB8::0001]:8080:80').hostIp], [6, '2001:db8::1']);
  assert.is(formatPublish(parsePublish('0.0.0.0:8080:80')), '0.0.0.0:8080:80/tcp');
  assert.is(formatPublish(parsePublish('[::]:8080:80/udp')), '[::]:8080:80/udp');
  assert.is(formatPublish(parsePublish('[2001:DB8::0001]:8080:80')), '[2001:db8::1]:8080:80/tcp');
  assert.throws(() => parsePublish('[::1]:8080:80'), /the kernel cannot forward IPv6's loopback \[::1\] to another host .*: publish on 127\.0\.0\.1 instead/);
  assert.throws(() => parsePublish('[fd42::zz]:8080:80'), /host address "fd42::zz" is not an IPv6 address/);
  assert.throws(() => parsePublish('2001:db8::1:8080:80'), /is malformed: .* \[2001:db8::1\]:3000:3010/);
});

test('publish: bad ports are refused with the reason', () => {
  assert.match(userErrorOf(() => parsePublish('0:80')), '"0" is not a port');
  assert.match(userErrorOf(() => parsePublish('65536:80')), '"65536" is not a port');
  assert.match(userErrorOf(() => parsePublish('http:80')), 'is not a port');
  assert.match(userErrorOf(() => parsePublish('90-80:90-80')), 'is reversed');
  assert.match(userErrorOf(() => parsePublish('80-81:80-82')), 'ranges of different lengths');
  assert.match(userErrorOf(() => parsePublish('80')), 'is malformed');
  assert.match(userErrorOf(() => parsePublish('80:80/sctp')), 'is malformed');
});

test('mounts: relative host paths resolve from the current directory', () => {
  assert.equal(parseMount('app/myApp/log:/log', '/home/u'), { host: '/home/u/app/myApp/log', container: '/log', readOnly: false });
  assert.equal(parseMount('/srv/a b:/app:ro', '/'), { host: '/srv/a b', container: '/app', readOnly: true });
});

test('mounts: malformed specs are refused', () => {
  assert.match(userErrorOf(() => parseMount('/a', '/')), 'is malformed');
  assert.match(userErrorOf(() => parseMount(':/a', '/')), 'has an empty side');
  assert.match(userErrorOf(() => parseMount('/a:rel', '/')), 'must be absolute');
  assert.match(userErrorOf(() => parseMount('/a:/b:rw', '/')), 'is malformed');
  assert.match(userErrorOf(() => parseMount('/a\n:/b', '/')), 'control character');
});

test('plain paths: what LXC hook lines and overlay options can carry', () => {
  assert.is(validatePlainPath('/containers', 'root', 'fix'), '/containers');
  for (const bad of ['/a b', '/a,b', '/a:b', "/a'b", '/a;b', '/a/../b', 'relative', '/a\nb']) {
    assert.match(userErrorOf(() => validatePlainPath(bad, 'root', 'pick another')), ': pick another');
  }
});

test('lists are repeatable and comma-separated', () => {
  assert.equal(splitList(['80:80,443:443', '53:53/udp']), ['80:80', '443:443', '53:53/udp']);
  assert.equal(splitList(undefined), []);
});

test('sizes: binary units as Docker and the kernel read them; anything else refused with how to write one', () => {
  assert.is(parseSize('512M', 'memory'), 512 * 2 ** 20);
  assert.is(parseSize('1.5g', 'memory'), 1.5 * 2 ** 30);
  assert.is(parseSize('2GiB', 'memory'), 2 * 2 ** 30);
  assert.is(parseSize('4096', 'memory'), 4096);
  for (const bad of ['', '0', '-1M', '1e9', '12X', '1M;reboot', '1\nM', 'M']) {
    assert.throws(() => parseSize(bad, 'memory'), /is not a size: write it like 512M or 2G/, bad);
  }
  assert.is(validateMemory('256M'), '268435456');
  assert.throws(() => validateMemory('4M'), /too small to run a container: give at least 8M/);
  assert.is(validateTmpfsSize('64M'), '67108864');
  assert.is(validateTmpfsSize('50%'), '50%');
  assert.throws(() => validateTmpfsSize('150%'), /tmpfs size "150%" is not a size/);
  assert.is(validateDisk('2G'), String(2 * 2 ** 30));
  assert.throws(() => validateDisk('8M'), /disk "8M" is too small for a write layer: give at least 16M/);
  assert.throws(() => validateDisk('50%'), /disk "50%" is not a size: write it like 512M or 2G/);
});

test("cpus: a decimal from 0.01 to the host's CPUs, like Docker's --cpus", () => {
  assert.is(validateCpus('1.5', 4), '1.5');
  assert.is(validateCpus('0.25', 4), '0.25');
  assert.is(validateCpus('4', 4), '4');
  for (const bad of ['0', '5', '0.001', '-1', '1,5', '1.5.1', 'all', '1;reboot']) {
    assert.throws(() => validateCpus(bad, 4), /is not a CPU count this host has: give a number from 0.01 to 4/, bad);
  }
});

test.run();
