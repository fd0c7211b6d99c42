// Running containers' addresses read from /proc, without asking LXC: which monitor is whose, and what a
// network namespace's fib_trie says it holds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { localAddresses, monitorName } from '../../../src/lxc/lxcpath.js';

test("a monitor's command line names its container, only for the lxcpath asked", () => {
  assert.is(monitorName('[lxc monitor] /var/lib/lxc web1\0', '/var/lib/lxc'), 'web1');
  assert.is(monitorName('[lxc monitor] /var/lib/lxc web1', '/var/lib/lxc'), 'web1');
  assert.is(monitorName('[lxc monitor] /srv/lxc web1\0', '/var/lib/lxc'), null);
  assert.is(monitorName('[lxc monitor] /var/lib/lxc2 web1\0', '/var/lib/lxc'), null);
  assert.is(monitorName('/sbin/init\0', '/var/lib/lxc'), null);
  assert.is(monitorName('', '/var/lib/lxc'), null);
});

test("a namespace's local IPv4 addresses are its fib_trie's /32 host LOCAL leaves, loopback left out, each once", () => {
  const trie = [
    'Main:',
    '  +-- 0.0.0.0/0 3 0 5',
    '     |-- 0.0.0.0',
    '        /0 universe UNICAST',
    '     +-- 10.0.3.0/24 2 0 2',
    '        |-- 10.0.3.0',
    '           /24 link UNICAST',
    '        |-- 10.0.3.150',
    '           /32 host LOCAL',
    '        |-- 10.0.3.255',
    '           /32 link BROADCAST',
    '     +-- 127.0.0.0/8 2 0 2',
    '        |-- 127.0.0.0',
    '           /8 host LOCAL',
    '        |-- 127.0.0.1',
    '           /32 host LOCAL',
    'Local:',
    '  +-- 0.0.0.0/0 3 0 5',
    '        |-- 10.0.3.150',
    '           /32 host LOCAL',
    '        |-- 10.0.3.151',
    '           /32 host LOCAL',
    '',
  ].join('\n');
  assert.equal(localAddresses(trie), ['10.0.3.150', '10.0.3.151']);
  assert.equal(localAddresses(''), []);
});

test.run();
