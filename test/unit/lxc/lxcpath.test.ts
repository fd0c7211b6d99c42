// Running containers' addresses read from /proc, without asking LXC: which monitor is whose, and what a
// network namespace's fib_trie says it holds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { commandSocketName, listeningSocket, localAddresses, monitorName } from '../../../src/lxc/lxcpath.js';

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


test("a monitor's socket is the listening one: the monitor's end of a client's connection (same path) is not", () => {
  const text = [
    'Num       RefCount Protocol Flags    Type St Inode Path',
    // lxc-stop's connection, accepted by the monitor: what is left through the post-stop hooks.
    '000000005524869d: 00000003 00000000 00000000 0001 03 3203929 @/var/lib/lxc/web1/command',
    '0000000017886f5e: 00000002 00000000 00010000 0001 01 3194800 @/var/lib/lxc/web1/command',
    '0000000017886f5f: 00000002 00000000 00010000 0001 01 3194801 @/var/lib/lxc/web10/command',
    '0000000017886f60: 00000002 00000000 00010000 0001 01 3194802 @/srv/my lxc/web1/command',
  ].join('\n');
  assert.is(listeningSocket(text, '@/var/lib/lxc/web1/command'), '3194800');
  assert.is(listeningSocket(text, '@/srv/my lxc/web1/command'), '3194802');
  assert.is(listeningSocket(text.split('\n').filter((line) => !line.includes('3194800')).join('\n'), '@/var/lib/lxc/web1/command'), null);
  assert.is(listeningSocket(text, '@/var/lib/lxc/web/command'), null);
});

test("a container's command socket: LXCPATH/NAME/command while it fits in a socket address, else LXC's FNV-1a hash of LXCPATH/NAME", () => {
  assert.is(commandSocketName('/var/lib/lxc', 'web1'), '@/var/lib/lxc/web1/command');
  // 105 bytes fit (with the NULs before and after, 107 of sun_path's 108); 106 do not.
  assert.is(commandSocketName(`/srv/${'l'.repeat(87)}`, 'web1'), `@/srv/${'l'.repeat(87)}/web1/command`);
  assert.is(commandSocketName(`/srv/${'l'.repeat(88)}`, 'web1'), '@lxc/d0254717be70e614/command');
});

test.run();
