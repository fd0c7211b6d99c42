// End to end for a full filesystem: create, update and commit on a real tiny ext4 (a loop-mounted image, filled up)
// say in one line which directory's filesystem is full and what to do, exit 2, and leave nothing behind.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { HOSTS_DIR } from '../../src/network/dhcp.js';
import { containerSuite, must, removeLxcContainer, sh, temporaryRoot, thinLxc, treeDigest, uniqueName } from '../helpers/host.js';

const { tests: full, runnable, cleanup, base, root } = await containerSuite('a full filesystem: one line naming it, exit 2, nothing left behind', 'fbase');

if (runnable) {
  let mountPoint = '';
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };

  full.before(async () => {
    const dir = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', dir]));
    const image = join(dir, 'small.ext4');
    mountPoint = join(dir, 'mnt');
    mkdirSync(mountPoint);
    await must('truncate', ['-s', '16M', image]);
    await must('mkfs.ext4', ['-q', '-F', image]);
    await must('mount', ['-o', 'loop', image, mountPoint]);
    // -d frees the loop device with the mount, also when a test failed half way.
    cleanup.add(() => sh('umount', ['-d', mountPoint]));
  });

  /**
   * Fills the small filesystem to the last block (as root, the blocks ext4 reserves for root too). ext4 reserves
   * more than a write turns out to need until it is written back, so it is filled again after each sync, in
   * smaller pieces, until nothing more fits.
   */
  const fill = async () => {
    for (const [round, size] of ['64k', '4k', '1k', '1k'].entries()) {
      const filled = await sh('dd', ['if=/dev/zero', `of=${join(mountPoint, `filler${round}`)}`, `bs=${size}`], 120_000);
      assert.match(filled.stderr, /No space left on device/, 'dd filled the filesystem');
      await must('sync', ['-f', mountPoint]);
    }
    assert.is((await sh('mkdir', [join(mountPoint, 'no-room')])).exitCode, 1, 'not even a directory fits');
  };
  const unfill = () => must('sh', ['-c', 'rm -f "$1"/filler*', 'sh', mountPoint]);

  full('create on a full root names the root, says what to do, exits 2 and leaves nothing in the root, LXC or dnsmasq', async () => {
    const name = track(uniqueName('full'));
    const small = join(mountPoint, 'create-root');
    mkdirSync(small);
    await fill();
    try {
      const created = await thinLxc(['create', name, '--base', base, '--root', small]);
      assert.is(
        created.stderr.trim(),
        `thin-lxc: no space left on the filesystem of ${small} (thin container ${name} was not created): free space there, or create it with --root on another filesystem`,
      );
      assert.is(created.exitCode, 2);
      assert.equal(readdirSync(small), [], 'nothing left in the root');
      assert.not.ok(existsSync(join('/var/lib/lxc', name)), 'not registered with LXC');
      assert.not.ok(existsSync(join(HOSTS_DIR, name)), 'no address reservation');
    } finally {
      await unfill();
    }
  });

  full('update on a full root names the container, exits 2 and changes nothing: state, config and no temporary files', async () => {
    const name = track(uniqueName('fupd'));
    const small = join(mountPoint, 'update-root');
    assert.is((await thinLxc(['create', name, '--base', base, '--root', small])).exitCode, 0);
    const dir = join(small, name);
    const before = treeDigest(dir);
    await fill();
    try {
      const updated = await thinLxc(['update', name, '--root', small, '--memory', '256M']);
      assert.is(
        updated.stderr.trim(),
        `thin-lxc: no space left on the filesystem of ${dir} (thin container ${name} was not updated): free space there, then update it again`,
      );
      assert.is(updated.exitCode, 2);
      assert.is(treeDigest(dir), before, 'the container is as it was');
      assert.not.match(readFileSync(join(dir, 'image', 'config'), 'utf8'), /memory/);
    } finally {
      await unfill();
    }
    assert.is((await thinLxc(['destroy', name, '--root', small])).exitCode, 0);
  });

  full("commit into a full lxcpath names the new base's directory, exits 2 and leaves no half-made base: with no room for it, and with room for it but not its copy", async () => {
    const name = track(uniqueName('fsrc'));
    const newBase = track(uniqueName('fimg'));
    const lxcpath = join(mountPoint, 'lxc');
    mkdirSync(lxcpath);
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root])).exitCode, 0);
    const message = `thin-lxc: no space left on the filesystem of ${join(lxcpath, newBase)} (the new base ${newBase} was not made): free space there, or commit with --lxcpath on another filesystem`;
    await fill();
    try {
      const committed = await thinLxc(['commit', name, newBase, '--root', root, '--lxcpath', lxcpath]);
      assert.is(committed.stderr.trim(), message);
      assert.is(committed.exitCode, 2);
      assert.equal(readdirSync(lxcpath), [], 'no half-made base');
      // A few blocks free: the directory and its first files fit, the base's files do not (rsync says so).
      await must('sh', ['-c', 'rm -f "$1"/filler[123] && mkdir "$1/room" && rmdir "$1/room"', 'sh', mountPoint]);
      const copied = await thinLxc(['commit', name, newBase, '--root', root, '--lxcpath', lxcpath]);
      assert.is(copied.stderr.trim(), message);
      assert.is(copied.exitCode, 2);
      assert.equal(readdirSync(lxcpath), [], 'no half-made base');
    } finally {
      await unfill();
    }
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  full.run();
}
