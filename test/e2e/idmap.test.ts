// End to end: idmapped mounts made by thin-lxc's helper on real directories: owners shifted up (a base's layers
// for an unprivileged container) and down (reading a write layer as the base's owners), read-only, and the
// kernel's refusal of a filesystem that cannot be idmapped (an overlay) reported, not thrown. The idmapped mounts
// are made in a private mount namespace of their own (as commit makes them), so a killed test leaves none behind.
import { chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { idmapMountCommand, idmapProblem, shiftDown, shiftUp, type MapLine } from '../../src/union/idmap.js';
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
  return { source, target };
}

/**
 * Mounts the pair through `line` in a private mount namespace and reports, from inside it, the file's owner and
 * whether a new file could be written; the namespace (and the mount) ends with the command.
 */
async function seenThrough(line: MapLine, pair: { source: string; target: string }): Promise<{ owner: string; write: string }> {
  const script = 'target=$1; shift; "$@" || exit 1; stat -c %u:%g "$target/file"; if touch "$target/new" 2>/dev/null; then echo written; else echo refused; fi';
  const out = await must('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', pair.target, ...idmapMountCommand(line, [pair])]);
  const [owner = '', write = ''] = out.trim().split('\n');
  return { owner, write };
}

idmap.after(() => cleanup.run());

idmap('shifting up shows a file owned by 1234 on disk as owned by HOST+1234, read-only, and changes nothing on disk', async () => {
  const before = readFileSync('/proc/self/mountinfo', 'utf8');
  const pair = layer('up', 1234);
  assert.equal(await seenThrough(shiftUp(map), pair), { owner: '301234:301234', write: 'refused' });
  assert.is(lstatSync(join(pair.source, 'file')).uid, 1234);
  assert.is(readFileSync('/proc/self/mountinfo', 'utf8'), before, 'the host sees no mount');
});

idmap('shifting down shows a file owned by HOST+5 on disk as owned by 5', async () => {
  assert.is((await seenThrough(shiftDown(map), layer('down', 300005))).owner, '5:5');
});

idmap('an id outside the map shows as the overflow id (65534), never as another real owner', async () => {
  assert.is((await seenThrough(shiftUp(map), layer('outside', 70000))).owner, '65534:65534');
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
