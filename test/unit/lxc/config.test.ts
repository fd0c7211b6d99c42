// Reading LXC config text as LXC does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lastValue, networkIndexes, parseLxcConfig } from '../../../src/lxc/config.js';

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

test.run();
