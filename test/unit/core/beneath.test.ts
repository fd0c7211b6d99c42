// Reading and writing under a layer root never follows a symlink, whichever component it is.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlockedPath, listBeneath, lstatBeneath, readFileBeneath, writeFileBeneath } from '../../../src/core/beneath.js';

/** A layer with etc/hostname, a secret outside it, and a symlink to the outside at each depth. */
function layer(): { root: string; outside: string; done: () => void } {
  const top = mkdtempSync(join(tmpdir(), 'thin-lxc-beneath-'));
  const root = join(top, 'wlayer');
  const outside = join(top, 'host');
  mkdirSync(join(outside, 'sub'), { recursive: true });
  writeFileSync(join(outside, 'hostname'), 'the-host\n');
  writeFileSync(join(outside, 'sub', 'hostname'), 'the-host\n');
  mkdirSync(join(root, 'etc', 'deep'), { recursive: true });
  writeFileSync(join(root, 'etc', 'hostname'), 'mine\n');
  symlinkSync(outside, join(root, 'link'));
  symlinkSync(outside, join(root, 'etc', 'link'));
  symlinkSync(join(outside, 'hostname'), join(root, 'etc', 'deep', 'hostname'));
  return { root, outside, done: () => rmSync(top, { recursive: true, force: true }) };
}

const blocked = (work: () => unknown) => assert.throws(work, (error: unknown) => error instanceof BlockedPath);

test('reads a file through real directories; null when missing', () => {
  const { root, done } = layer();
  try {
    assert.is(readFileBeneath(root, 'etc/hostname'), 'mine\n');
    assert.is(readFileBeneath(root, 'etc/nothing'), null);
    assert.is(readFileBeneath(root, 'nothing/hostname'), null);
    assert.ok(lstatBeneath(root, 'etc')?.isDirectory());
    assert.is(lstatBeneath(root, 'etc/nothing'), null);
  } finally {
    done();
  }
});

test('a symlink as the first, a middle or the last component is refused, never followed', () => {
  const { root, done } = layer();
  try {
    blocked(() => readFileBeneath(root, 'link/hostname'));
    blocked(() => readFileBeneath(root, 'link/sub/hostname'));
    blocked(() => readFileBeneath(root, 'etc/link/hostname'));
    blocked(() => readFileBeneath(root, 'etc/link/sub/hostname'));
    blocked(() => readFileBeneath(root, 'etc/deep/hostname'));
    blocked(() => listBeneath(root, 'link'));
    blocked(() => listBeneath(root, 'etc/link/sub'));
    blocked(() => lstatBeneath(root, 'link/hostname'));
    blocked(() => readFileBeneath(root, 'etc/../link/hostname'));
    assert.ok(lstatBeneath(root, 'etc/link')?.isSymbolicLink(), 'the symlink itself is seen as one');
  } finally {
    done();
  }
});

test('a file in place of a directory, a FIFO or a directory in place of a file is refused', () => {
  const { root, done } = layer();
  try {
    blocked(() => readFileBeneath(root, 'etc/hostname/x'));
    blocked(() => readFileBeneath(root, 'etc/deep'));
    execFileSync('mkfifo', [join(root, 'etc', 'fifo')]);
    blocked(() => readFileBeneath(root, 'etc/fifo'));
  } finally {
    done();
  }
});

test('lists a directory with each entry lstat-ed: a symlink is listed as one, its target is not listed', () => {
  const { root, done } = layer();
  try {
    const entries = listBeneath(root, 'etc')!;
    assert.equal(entries.map((entry) => entry.name), ['deep', 'hostname', 'link']);
    assert.ok(entries.find((entry) => entry.name === 'link')!.stat.isSymbolicLink());
    assert.equal(listBeneath(root, '')!.map((entry) => entry.name), ['etc', 'link']);
    assert.is(listBeneath(root, 'nothing'), null);
  } finally {
    done();
  }
});

test('writes a file in place, never through a symlink at any component', () => {
  const { root, outside, done } = layer();
  try {
    writeFileBeneath(root, 'etc/hostname', 'new\n');
    assert.is(readFileSync(join(root, 'etc', 'hostname'), 'utf8'), 'new\n');
    writeFileBeneath(root, 'etc/made', 'x');
    assert.is(readFileSync(join(root, 'etc', 'made'), 'utf8'), 'x');
    blocked(() => writeFileBeneath(root, 'etc/deep/hostname', 'owned\n'));
    blocked(() => writeFileBeneath(root, 'link/hostname', 'owned\n'));
    blocked(() => writeFileBeneath(root, 'etc/link/sub/hostname', 'owned\n'));
    assert.is(readFileSync(join(outside, 'hostname'), 'utf8'), 'the-host\n');
    assert.is(readFileSync(join(outside, 'sub', 'hostname'), 'utf8'), 'the-host\n');
  } finally {
    done();
  }
});

test.run();
