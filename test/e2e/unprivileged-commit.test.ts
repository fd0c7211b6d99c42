// End to end for committing an unprivileged thin container: its write layer, stored shifted (root inside is
// HOST on disk), is read through an idmapped mount that shifts it back, in the copy's own mount namespace, so
// the image is owned as the base is and no shifted id leaks into it.
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyMergedView } from '../../src/core/commands.js';
import { idmapMountCommand, shiftDown } from '../../src/union/idmap.js';
import { readOnlyOptions } from '../../src/union/mount.js';
import { Cleanup, sh } from '../helpers/host.js';

const mechanism = suite('copying a shifted write layer over a base');
const cleanup = new Cleanup();
mechanism.after(() => cleanup.run());

/** A file with an owner and a mode, made by host root. */
function file(path: string, uid: number, gid: number, mode = 0o644): void {
  writeFileSync(path, 'x');
  chownSync(path, uid, gid);
  // chown clears setuid bits: the mode comes after it.
  chmodSync(path, mode);
}

mechanism('the write layer shifted down over a base layer as it is: owners 0 and 1234 (not 100000+), the base as on disk, nothing mounted on the host', async () => {
  const dir = mkdtempSync('/tmp/thin-lxc-shifted-');
  cleanup.add(() => sh('rm', ['-rf', dir]));
  const [base, wlayer, merged, dest] = ['base', 'wlayer', 'merged', 'dest'].map((name) => join(dir, name)) as [string, string, string, string];
  for (const path of [base, wlayer, merged, dest]) mkdirSync(path);
  // The base, owned 0.. on disk; the write layer as an unprivileged container with the map 100000:65536 leaves it.
  file(join(base, 'base-root'), 0, 0);
  file(join(base, 'base-user'), 42, 43);
  chownSync(wlayer, 100000, 100000);
  mkdirSync(join(wlayer, 'root'));
  chownSync(join(wlayer, 'root'), 100000, 100000);
  file(join(wlayer, 'root/made'), 100000, 100000);
  file(join(wlayer, 'root/owned'), 101234, 105678);
  file(join(wlayer, 'root/setuid'), 100000, 100000, 0o4755);
  file(join(wlayer, 'root/foreign'), 70000, 70000);

  const map = { host: 100000, range: 65536 };
  const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8');
  copyMergedView('overlay', readOnlyOptions('overlay', [wlayer, base]), merged, dest, undefined, [idmapMountCommand(shiftDown(map), [{ source: wlayer, target: wlayer }])]);

  const owner = (path: string) => {
    const stat = lstatSync(join(dest, path));
    return [stat.uid, stat.gid, (stat.mode & 0o7777).toString(8)];
  };
  assert.equal(owner('root/made'), [0, 0, '644']);
  assert.equal(owner('root/owned'), [1234, 5678, '644']);
  assert.equal(owner('root/setuid'), [0, 0, '4755']);
  assert.equal(owner('root'), [0, 0, '755']);
  assert.equal(owner('base-root'), [0, 0, '644'], "the base's files as on disk");
  assert.equal(owner('base-user'), [42, 43, '644']);
  // Outside the map there is no owner to shift to: the kernel shows the overflow id, never a real one.
  assert.equal(owner('root/foreign').slice(0, 2), [65534, 65534]);
  assert.equal(lstatSync(join(wlayer, 'root/made')).uid, 100000, 'the write layer is unchanged on disk');
  assert.is(readFileSync('/proc/self/mountinfo', 'utf8'), mountsBefore, 'the host sees no mount');
});

mechanism('a failing command before the mount fails the copy, and copies nothing', async () => {
  const dir = mkdtempSync('/tmp/thin-lxc-shifted-');
  cleanup.add(() => sh('rm', ['-rf', dir]));
  const [base, wlayer, merged, dest] = ['base', 'wlayer', 'merged', 'dest'].map((name) => join(dir, name)) as [string, string, string, string];
  for (const path of [base, wlayer, merged, dest]) mkdirSync(path);
  file(join(base, 'kept'), 0, 0);
  const missing = join(dir, 'missing');
  assert.throws(
    () => copyMergedView('overlay', readOnlyOptions('overlay', [wlayer, base]), merged, dest, undefined, [['true'], idmapMountCommand(shiftDown({ host: 100000, range: 65536 }), [{ source: missing, target: missing }])]),
    /open_tree .*missing/,
  );
  assert.equal((await sh('ls', ['-A', dest])).stdout, '', 'nothing was copied');
});

mechanism.run();
