// End to end: --disk images under a root reached through a symlink (/containers -> /srv/containers, as many hosts
// have it). The kernel names a loop device's file by its real path (/sys/block/loopN/loop/backing_file), so every
// "is the image in use" check must compare real paths: else update grows, commit copies and diff mounts a second
// ext4 over an image whose filesystem is still mounted elsewhere; and so must the mount tables' paths.
import { existsSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { readState } from '../../src/state/state.js';
import { containerSuite, must, removeLxcContainer, sh, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { holdImageReadOnly, loopsOf } from '../helpers/images.js';
import { eventually } from '../helpers/locks.js';

const { tests: linked, runnable, cleanup, base, root: realRoot } = await containerSuite('--disk images under a root reached through a symlink', 'slbase');


if (runnable) {
  // The suite's root is the real directory; thin-lxc is given a symlink to it.
  const root = `/tmp/${uniqueName('link')}`;
  cleanup.add(() => sh('rm', ['-f', root]));
  symlinkSync(realRoot, root);
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };

  linked('update --disk refuses to grow an image another process holds mounted, when the root is given through a symlink', async () => {
    const name = track(uniqueName('slhold'));
    const image = join(realRoot, name, 'disk.img');
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M'])).exitCode, 0);
    // A read-only mount of the image in a namespace of its own: what a diff holds, or a stop's post-stop hook not done.
    const hold = await holdImageReadOnly(image, join(realRoot, `${name}.hold`));
    cleanup.add(() => hold.release());
    assert.is(loopsOf(image).length, 1, 'a loop device holds the image');
    const grown = await thinLxc(['update', name, '--root', root, '--disk', '128M']);
    assert.is(grown.exitCode, 2, `update grew an image whose filesystem is mounted: ${grown.stdout}`);
    assert.match(grown.stderr, 'disk image is still in use');
    assert.is(statSync(image).size, 64 * 2 ** 20, 'the file is as it was');
    assert.is(readState(join(realRoot, name)).disk, String(64 * 2 ** 20));
    await hold.release();
    assert.ok(await eventually(() => loopsOf(image).length === 0, 10_000), 'the loop device goes with its mount');
  });

  linked('diff of a running --disk container reads its live filesystem when the root is given through a symlink', async () => {
    const name = track(uniqueName('sldiff'));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M'])).exitCode, 0);
    assert.is((await startContainer(name)).exitCode, 0);
    await must('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'echo x > /root/made']);
    const changes = await thinLxc(['diff', name, '--root', root]);
    assert.is(changes.exitCode, 0, changes.stderr);
    assert.match(changes.stdout, 'A /root/made');
    await must('lxc-stop', ['-n', name, '-k']);
  });

  // The same comparison of paths as given with the kernel's real ones, in the monitor's mount table.
  linked('an unprivileged ephemeral container is removed at its stop when the root is given through a symlink', async () => {
    const name = track(uniqueName('slephe'));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--unprivileged', '--ephemeral'])).exitCode, 0);
    assert.is((await startContainer(name)).exitCode, 0);
    await must('lxc-stop', ['-n', name]);
    const gone = await eventually(() => !existsSync(join(realRoot, name)), 10_000);
    assert.ok(gone, `its directory is left: ${existsSync(join(realRoot, name, 'hook.log')) ? readFileSync(join(realRoot, name, 'hook.log'), 'utf8').trim() : ''}`);
  });
}

linked.run();
