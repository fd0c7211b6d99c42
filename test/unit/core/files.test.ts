// Removing trees without crossing a mount: the mount table as the kernel writes it, and real trees in /tmp.
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mountPointsUnder, parseMountPoints, removeTreeOnDevice } from '../../../src/core/files.js';

test('mount points are field 5 of mountinfo, with octal escapes decoded', () => {
  const mountinfo = [
    '22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '98 22 254:1 /tmp/src /srv/my\\040data\\134x rw,relatime shared:1 - ext4 /dev/vda rw',
    '',
  ].join('\n');
  assert.equal(parseMountPoints(mountinfo), ['/', '/srv/my data\\x']);
});

test('a tree without mounts is removed whole; a symlink in it is unlinked, never followed', () => {
  const outside = mkdtempSync('/tmp/thin-lxc-unit-');
  const tree = mkdtempSync('/tmp/thin-lxc-unit-');
  try {
    writeFileSync(join(outside, 'keep'), 'x');
    mkdirSync(join(tree, 'a/b'), { recursive: true });
    writeFileSync(join(tree, 'a/b/file'), 'y');
    symlinkSync(outside, join(tree, 'a/link'));
    assert.equal(mountPointsUnder(tree), []);
    removeTreeOnDevice(tree, 'a test tree');
    assert.not.ok(existsSync(tree));
    assert.ok(existsSync(join(outside, 'keep')), 'what the symlink pointed at is untouched');
    removeTreeOnDevice(tree, 'a test tree'); // gone already: quiet
  } finally {
    rmSync(outside, { recursive: true, force: true });
    rmSync(tree, { recursive: true, force: true });
  }
});

test.run();
