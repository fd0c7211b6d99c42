// End to end for thin-lxc commit: a stopped thin container's merged view becomes a standalone LXC container
// (owners, modes, hard links, device nodes, sparse files, xattrs and deletions intact) that lxc-start boots
// and that thin containers stack on.
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { attach, containerSuite, hostMountsMentioning, must, removeLxcContainer, sh, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { CLI } from '../helpers/paths.js';

const { tests: commits, runnable, cleanup, base, root } = await containerSuite('thin-lxc commit with real LXC', 'mbase');

if (runnable) {
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };

  commits('commit copies the merged view with owners, modes, hard links, devices, sparse files, xattrs and deletions; lxc-start boots it; thin containers stack on it', async () => {
    const thin = track(uniqueName('src'));
    const image = track(uniqueName('img'));
    assert.is((await thinLxc(['create', thin, '--base', base, '--root', root])).exitCode, 0);
    assert.is((await startContainer(thin)).exitCode, 0);
    await attach(
      thin,
      'mkdir /srv && echo data > /srv/a && ln /srv/a /srv/b && mknod /srv/null c 1 3 && chown 1234:5678 /srv/a && chmod 4750 /srv/a && ' +
        'dd if=/dev/zero of=/srv/sparse bs=1 count=0 seek=100M 2>/dev/null && rm /etc/passwd',
    );
    await must('lxc-stop', ['-n', thin]);
    await must('setfattr', ['-n', 'user.thin', '-v', 'kept', join(root, thin, 'wlayer/srv/a')]);

    const running = track(uniqueName('run'));
    assert.is((await thinLxc(['create', running, '--base', base, '--root', root])).exitCode, 0);
    assert.is((await startContainer(running)).exitCode, 0);
    const refused = await thinLxc(['commit', running, uniqueName('x'), '--root', root]);
    assert.is(refused.exitCode, 2);
    assert.match(refused.stderr, `thin-lxc: ${running} is running: stop it first (lxc-stop -n ${running})`);
    await must('lxc-stop', ['-n', running, '-k']);
    const taken = await thinLxc(['commit', thin, base, '--root', root]);
    assert.is(taken.stderr.trim(), `thin-lxc: name "${base}" is already used by a container: choose another name for the new base`);

    const dry = await thinLxc(['commit', thin, image, '--root', root, '--dry-run']);
    assert.is(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stdout, `# thin-lxc commit --dry-run: nothing was written. ${join(root, thin, 'wlayer')} over /var/lib/lxc/${base}/rootfs would be copied`);
    assert.not.ok(existsSync(join('/var/lib/lxc', image)), '--dry-run makes nothing');
    const committed = await thinLxc(['commit', thin, image, '--root', root]);
    assert.is(committed.exitCode, 0, committed.stderr);
    assert.match(committed.stdout, `Committed ${thin} to LXC container ${image} (/var/lib/lxc/${image})`);
    assert.equal(hostMountsMentioning(join(root, thin)), [], 'the merged view was mounted in a namespace of its own only');

    const rootfs = join('/var/lib/lxc', image, 'rootfs');
    const a = lstatSync(join(rootfs, 'srv/a'));
    assert.equal([a.uid, a.gid, (a.mode & 0o7777).toString(8), a.nlink], [1234, 5678, '4750', 2]);
    assert.is(lstatSync(join(rootfs, 'srv/b')).ino, a.ino, 'the hard link is one file');
    const device = lstatSync(join(rootfs, 'srv/null'));
    assert.ok(device.isCharacterDevice());
    assert.is(device.rdev, lstatSync('/dev/null').rdev);
    const sparse = lstatSync(join(rootfs, 'srv/sparse'));
    assert.equal([sparse.size, sparse.blocks < 64], [100 * 2 ** 20, true], 'the sparse file stays sparse');
    assert.match(await must('getfattr', ['-n', 'user.thin', join(rootfs, 'srv/a')]), 'user.thin="kept"');
    assert.not.ok(existsSync(join(rootfs, 'etc/passwd')), 'a file deleted in the thin container stays deleted');
    assert.ok(existsSync(join(rootfs, 'bin/busybox')), "the base's files are there");
    assert.not.ok(readdirSync(rootfs).some((entry) => entry.startsWith('.wh.')), 'no overlayfs whiteout is copied');

    const config = readFileSync(join('/var/lib/lxc', image, 'config'), 'utf8');
    assert.not.match(config, /thin-lxc-\w+\.js|lxc\.hook\.|ipv4\.address|ipv4\.gateway|veth\.pair/);
    assert.match(config, `lxc.rootfs.path = dir:${rootfs}\nlxc.uts.name = ${image}\nlxc.net.0.hwaddr = 00:16:3e:`);

    assert.is((await startContainer(image)).exitCode, 0, 'lxc-start boots it');
    assert.is(await attach(image, 'cat /srv/a'), 'data');
    await must('lxc-stop', ['-n', image]);

    const stacked = track(uniqueName('stk'));
    assert.is((await thinLxc(['create', stacked, '--base', image, '--root', root])).exitCode, 0);
    assert.is((await startContainer(stacked)).exitCode, 0);
    assert.is(await attach(stacked, 'cat /srv/a; test -e /etc/passwd || echo deleted'), 'data\ndeleted');
    await must('lxc-stop', ['-n', stacked]);
    for (const name of [stacked, running, thin]) assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  commits('on a terminal commit shows the copy progress', async () => {
    const thin = track(uniqueName('tty'));
    const image = track(uniqueName('tim'));
    assert.is((await thinLxc(['create', thin, '--base', base, '--root', root])).exitCode, 0);
    // script(1) gives the command a terminal, as a person running it has.
    const shown = await sh('script', ['-qec', `${process.execPath} ${CLI} commit ${thin} ${image} --root ${root}`, '/dev/null']);
    assert.is(shown.exitCode, 0, shown.stdout);
    assert.match(shown.stdout, /to-chk=0\/\d+/, "rsync's progress counted down to the last file");
    assert.match(shown.stdout, `Committed ${thin} to LXC container ${image}`);
    const spare = track(uniqueName('spr'));
    const piped = await thinLxc(['commit', thin, spare, '--root', root, '--json']);
    assert.is((JSON.parse(piped.stdout) as { name: string }).name, spare);
    assert.not.match(piped.stdout + piped.stderr, '%', 'no progress where no one watches');
    assert.is((await thinLxc(['destroy', thin, '--root', root])).exitCode, 0);
  });
}

commits.run();
