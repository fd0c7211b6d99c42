import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LOCK_DIR, withLock } from '../../src/lock.js';

const name = `unit-${process.pid}`;
const path = join(LOCK_DIR, `${name}.lock`);
const canWrite = process.getuid?.() === 0;

test('a lock whose holder has not written its pid yet is waited for, not taken', () => {
  if (!canWrite) return;
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'pid'), '');
  try {
    assert.throws(() => withLock(name, () => 'taken', 200), /timed out waiting for/);
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
});

test('a lock whose holder is dead is taken over', () => {
  if (!canWrite) return;
  const dead = spawnSync('true').pid;
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'pid'), String(dead));
  try {
    assert.is(withLock(name, () => 'taken', 2_000), 'taken');
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
});

test.run();
