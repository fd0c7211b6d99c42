// A host-wide lock between thin-lxc processes (creates choosing addresses, hooks editing iptables).
// mkdir is atomic; the holder's pid inside lets a lock left by a killed process be taken over.
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from './errors.js';
import { isAlive } from './pid.js';

export const LOCK_DIR = '/run/thin-lxc';
const WAIT_STEP_MS = 10;
/** A lock directory without a pid for this long was left by a holder killed as it took the lock. */
const ORPHAN_AFTER_MS = 5_000;

export function withLock<T>(name: string, work: () => T, timeoutMs = 20_000): T {
  const path = join(LOCK_DIR, `${name}.lock`);
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
  const deadline = Date.now() + timeoutMs;
  while (!tryTake(path)) {
    if (Date.now() > deadline) throw new UserError(`timed out waiting for ${path}: if no thin-lxc is running, remove it`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, WAIT_STEP_MS);
  }
  try {
    return work();
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

function tryTake(path: string): boolean {
  try {
    mkdirSync(path);
  } catch {
    if (holderIsGone(path)) rmSync(path, { recursive: true, force: true });
    return false;
  }
  writeFileSync(join(path, 'pid'), String(process.pid));
  return true;
}

function holderIsGone(path: string): boolean {
  let text: string;
  try {
    text = readFileSync(join(path, 'pid'), 'utf8');
  } catch {
    text = '';
  }
  // No pid yet: the holder is between mkdir and writing it, unless it was killed right there long ago.
  if (text.trim() === '') return ageMs(path) > ORPHAN_AFTER_MS;
  return !isAlive(Number(text));
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}
