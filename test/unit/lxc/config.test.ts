// Reading LXC config text as LXC does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lastValue, mountEntry, mountEntryValue, mountsBind, networkIndexes, parseLxcConfig, replaceEntries } from '../../../src/lxc/config.js';

test('parses key = value lines, skipping comments and stripping one pair of quotes as LXC does', () => {
  const entries = parseLxcConfig('# comment\nlxc.uts.name = "bb0"\n  lxc.net.0.type=veth  \n\nnot a line\nlxc.environment = \'A=b c\'\n');
  assert.equal(entries, [
    { key: 'lxc.uts.name', value: 'bb0' },
    { key: 'lxc.net.0.type', value: 'veth' },
    { key: 'lxc.environment', value: 'A=b c' },
  ]);
});

test('the last value of a key wins, as in LXC', () => {
  assert.is(lastValue(parseLxcConfig('lxc.rootfs.path = /a\nlxc.rootfs.path = /b\n'), 'lxc.rootfs.path'), '/b');
});

test('network devices that get a MAC address', () => {
  const entries = parseLxcConfig('lxc.net.1.type = veth\nlxc.net.0.type = veth\nlxc.net.2.type = none\nlxc.net.0.link = lxcbr0\n');
  assert.equal(networkIndexes(entries), [0, 1]);
});

test('replacing entries: in place of the first dropped, or at the end under a heading; the rest untouched', () => {
  const config = '# mine\nlxc.start.auto = 1\nlxc.tty.max = 4\nlxc.start.auto = 1\n';
  const off = replaceEntries(config, (entry) => entry.key === 'lxc.start.auto', [], 'Autostart.');
  assert.is(off, '# mine\nlxc.tty.max = 4\n');
  const on = replaceEntries(off, (entry) => entry.key === 'lxc.start.auto', [{ key: 'lxc.start.auto', value: '1' }], 'Autostart.');
  assert.is(on, '# mine\nlxc.tty.max = 4\n\n# Autostart.\nlxc.start.auto = 1\n');
  const moved = replaceEntries(on, (entry) => entry.key === 'lxc.tty.max', [{ key: 'lxc.tty.max', value: '2' }], 'TTYs.');
  assert.is(moved, '# mine\nlxc.tty.max = 2\n\n# Autostart.\nlxc.start.auto = 1\n');
  assert.is(replaceEntries(on, (entry) => entry.key === 'lxc.start.auto', [], 'Autostart.'), '# mine\nlxc.tty.max = 4\n', 'its heading goes with its last line');
});

test("a bind mount's entry is recognised whatever its options, and only its own", () => {
  const mount = { host: '/srv/my app', container: '/app', readOnly: false };
  const value = mountEntryValue(mountEntry(mount, true));
  assert.is(value, '/srv/my\\040app app none bind,create=dir 0 0');
  assert.ok(mountsBind(value, mount));
  assert.ok(mountsBind(value.replace('create=dir', 'create=dir,ro'), mount));
  assert.not.ok(mountsBind('/srv/other app none bind 0 0', mount));
  assert.not.ok(mountsBind('proc proc proc nodev 0 0', mount));
});

test.run();
