// End to end: idmapped mounts made by thin-lxc's helper on real directories: owners shifted up (a base's layers
// for an unprivileged container) and down (reading a write layer as the base's owners), read-only, and the
// kernel's refusal of a filesystem that cannot be idmapped (an overlay) reported, not thrown.
import { chownSync, lstatSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { idmapProblem, mountIdmapped, shiftDown, shiftUp } from '../../src/union/idmap.js';
import { Cleanup, must, sh } from '../helpers/host.js';

const idmap = suite('idmapped mounts');
const cleanup = new Cleanup();
const dir = mkdtempSync('/tmp/thin-lxc-idmap-');
cleanup.add(() => sh('rm', ['-rf', dir]));
const map = { host: 300000, range: 65536 };

/** A directory with a file owned by `uid`, and an empty mount point beside it. */
function layer(name: string, uid: number): { source: string; target: string } {
  const source = join(dir, name);
  const target = join(dir, `${name}-mounted`);
  mkdirSync(source);
  mkdirSync(target);
  writeFileSync(join(source, 'file'), 'x');
  chownSync(join(source, 'file'), uid, uid);
  cleanup.add(() => sh('umount', ['-l', target]));
  return { source, target };
}

idmap.after(() => cleanup.run());

idmap('shifting up shows a file owned by 1234 on disk as owned by HOST+1234, read-only, and changes nothing on disk', () => {
  const pair = layer('up', 1234);
  mountIdmapped(shiftUp(map), [pair]);
  const seen = lstatSync(join(pair.target, 'file'));
  assert.is(seen.uid, 301234);
  assert.is(seen.gid, 301234);
  assert.throws(() => writeFileSync(join(pair.target, 'new'), 'y'), /EROFS/);
  assert.is(lstatSync(join(pair.source, 'file')).uid, 1234);
});

idmap('shifting down shows a file owned by HOST+5 on disk as owned by 5', () => {
  const pair = layer('down', 300005);
  mountIdmapped(shiftDown(map), [pair]);
  assert.is(lstatSync(join(pair.target, 'file')).uid, 5);
});

idmap('an id outside the map shows as the overflow id (65534), never as another real owner', () => {
  const pair = layer('outside', 70000);
  mountIdmapped(shiftUp(map), [pair]);
  assert.is(lstatSync(join(pair.target, 'file')).uid, 65534);
});

idmap('idmapProblem is null for an ext4 directory and names the refusal for an overlay, mounting nothing', async () => {
  const plain = join(dir, 'plain');
  mkdirSync(plain);
  assert.is(idmapProblem(shiftUp(map), [plain]), null);
  const [lower, upper, work, merged] = [join(dir, 'ol'), join(dir, 'ou'), join(dir, 'ow'), join(dir, 'om')] as const;
  for (const path of [lower, upper, work, merged]) mkdirSync(path);
  cleanup.add(() => sh('umount', ['-l', merged]));
  await must('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
  const before = (await must('cat', ['/proc/self/mountinfo'])).split('\n').length;
  const problem = idmapProblem(shiftUp(map), [merged]);
  assert.match(problem ?? '', /^mount_setattr .*om: /);
  assert.is((await must('cat', ['/proc/self/mountinfo'])).split('\n').length, before);
});

idmap.run();
