// A base's lxc_snapshots in LXC's format: each dependent as its lxcpath and name, a line each, or an older count.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatSnapshots, parseSnapshots } from '../../../src/lxc/snapshots.js';

test('entries are pairs of lines, lxcpath then name, as lxc-copy -s writes them', () => {
  assert.equal(parseSnapshots('/var/lib/lxc\nsnap1\n/other/path\nweb\n'), {
    entries: [
      { lxcpath: '/var/lib/lxc', name: 'snap1' },
      { lxcpath: '/other/path', name: 'web' },
    ],
  });
  assert.equal(parseSnapshots(''), { entries: [] });
});

test('the older format is one count', () => {
  assert.equal(parseSnapshots('2\n'), { count: 2 });
  assert.equal(parseSnapshots('0'), { count: 0 });
});

test('formatting is the exact inverse', () => {
  const text = '/var/lib/lxc\nweb\n/x/var/lib/lxc\nweb\n';
  const parsed = parseSnapshots(text);
  assert.ok('entries' in parsed);
  assert.is(formatSnapshots(parsed.entries), text);
});

test.run();
