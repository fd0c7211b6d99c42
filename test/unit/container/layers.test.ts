// The write layer's files: a thin container's own hostname over its base's.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { identityFiles } from '../../../src/container/layers.js';

function layer(files: Record<string, string>): string {
  const dir = mkdtempSync('/tmp/thin-lxc-unit-');
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

test("the base's hostname is replaced in /etc/hostname and /etc/hosts, from the top layer that has them", () => {
  const bottom = layer({ 'etc/hostname': 'deb0\n', 'etc/hosts': '127.0.0.1 localhost\n127.0.1.1   deb0\n10.0.0.9 deb0x\n' });
  const top = layer({ 'etc/hostname': 'snap1\n' });
  try {
    assert.equal(identityFiles([bottom], 'web1'), [
      { path: 'etc/hostname', content: 'web1\n' },
      { path: 'etc/hosts', content: '127.0.0.1 localhost\n127.0.1.1   web1\n10.0.0.9 deb0x\n' },
    ]);
    assert.equal(identityFiles([top, bottom], 'web1'), [{ path: 'etc/hostname', content: 'web1\n' }], 'snap1 is not in hosts');
  } finally {
    rmSync(bottom, { recursive: true });
    rmSync(top, { recursive: true });
  }
});

test('a base without /etc/hostname (busybox) gets nothing written', () => {
  const bare = layer({ 'etc/passwd': 'root:x:0:0::/root:/bin/sh\n' });
  try {
    assert.equal(identityFiles([bare], 'web1'), []);
  } finally {
    rmSync(bare, { recursive: true });
  }
});

test("a base hostname with regex characters is matched as it is written, never as a pattern", () => {
  const paren = layer({ 'etc/hostname': 'h(\n', 'etc/hosts': '127.0.1.1 h(\n' });
  const plus = layer({ 'etc/hostname': 'a+\n', 'etc/hosts': '127.0.1.1 a+\n10.0.0.9 aa\n' });
  try {
    assert.equal(identityFiles([paren], 'web1'), [
      { path: 'etc/hostname', content: 'web1\n' },
      { path: 'etc/hosts', content: '127.0.1.1 web1\n' },
    ]);
    assert.equal(identityFiles([plus], 'web1'), [
      { path: 'etc/hostname', content: 'web1\n' },
      { path: 'etc/hosts', content: '127.0.1.1 web1\n10.0.0.9 aa\n' },
    ], 'aa is another host');
  } finally {
    rmSync(paren, { recursive: true });
    rmSync(plus, { recursive: true });
  }
});

test.run();
