// End to end: bind mounts (--mount) of unprivileged thin containers with real LXC. Every one is a plain bind, never
// idmapped (root inside can remount a read-only bind read-write): host files owned outside the map show as nobody
// and stay out of root's reach inside, remount or not; a folder chowned into the map is root's inside.
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { attach, containerSuite, must, removeLxcContainer, sh, startContainer, thinLxc, uniqueName } from '../helpers/host.js';

const { tests: mounts, runnable, cleanup, base, root } = await containerSuite('bind mounts of unprivileged thin containers with real LXC', 'umbase');

if (runnable) {
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  /** A host folder of this test's own, with a file owned by host root and one owned by 1000. */
  const hostFolder = () => {
    const dir = mkdtempSync('/tmp/thin-lxc-umount-');
    cleanup.add(() => sh('rm', ['-rf', dir]));
    chmodSync(dir, 0o755); // mkdtemp makes it 0700: a folder someone shares is usually readable
    writeFileSync(join(dir, 'root-file'), 'root\n');
    writeFileSync(join(dir, 'user-file'), 'user\n');
    chownSync(join(dir, 'user-file'), 1000, 1000);
    return dir;
  };

  mounts("a read-only bind mount (a folder or a file) shows host files owned outside the map as nobody and cannot be written; a writable one shows host root's as nobody, which root inside cannot write, and a folder chowned to 100000 is root's inside", async () => {
    const name = track(uniqueName('um'));
    const readOnly = hostFolder();
    const writable = hostFolder();
    const shared = join(writable, 'shared');
    mkdirSync(shared);
    chownSync(shared, 100000, 100000);
    const file = join(readOnly, 'user-file');
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--unprivileged', '-m', `${readOnly}:/ro:ro`, '-m', `${writable}:/rw`, '-m', `${file}:/etc/app.conf:ro`]);
    assert.is(created.exitCode, 0, created.stderr);
    const config = readFileSync(join(root, name, 'image/config'), 'utf8');
    assert.match(config, `lxc.mount.entry = ${readOnly} ro none bind,create=dir,ro 0 0`);
    assert.match(config, `lxc.mount.entry = ${writable} rw none bind,create=dir 0 0`);
    assert.is((await startContainer(name)).exitCode, 0);

    assert.match(config, `lxc.mount.entry = ${file} etc/app.conf none bind,create=file,ro 0 0`);
    assert.is(await attach(name, 'stat -c %u:%g /ro/root-file /ro/user-file /etc/app.conf; cat /ro/root-file /etc/app.conf'), '65534:65534\n65534:65534\n65534:65534\nroot\nuser');
    assert.match(await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'echo x > /ro/new']).then((ran) => ran.stderr), 'Read-only file system');
    assert.is(await attach(name, 'stat -c %u:%g /rw/root-file /rw/user-file /rw/shared'), '65534:65534\n65534:65534\n0:0');
    const denied = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'echo changed > /rw/root-file']);
    assert.match(denied.stderr, 'Permission denied');
    assert.is(readFileSync(join(writable, 'root-file'), 'utf8'), 'root\n', "host root's file is unchanged");
    await attach(name, 'echo made > /rw/shared/made && chown 33:33 /rw/shared/made && echo own > /rw/shared/own');
    assert.equal([lstatSync(join(shared, 'made')).uid, lstatSync(join(shared, 'made')).gid, lstatSync(join(shared, 'own')).uid], [100033, 100033, 100000]);
    await must('lxc-stop', ['-n', name, '-k']);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  mounts("root inside cannot make a read-only bind mount writable to write host root's files or leave a setuid-root program on the host (remount,bind,rw as root inside)", async () => {
    const name = track(uniqueName('ur'));
    const readOnly = hostFolder();
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--unprivileged', '-m', `${readOnly}:/ro:ro`])).exitCode, 0);
    assert.is((await startContainer(name)).exitCode, 0);
    // Every step is tried whatever the one before did: the host's files are the verdict, not the exit codes.
    await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'mount -o remount,bind,rw /ro; echo pwned > /ro/root-file; echo x > /ro/new; chmod 4755 /ro/new']);
    assert.is(readFileSync(join(readOnly, 'root-file'), 'utf8'), 'root\n', "host root's file is unchanged");
    assert.not.ok(existsSync(join(readOnly, 'new')), 'no file made in the host folder (a setuid-root one least of all)');
    await must('lxc-stop', ['-n', name, '-k']);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  mounts('update --mount gives a stopped unprivileged container plain binds, read-only and writable', async () => {
    const name = track(uniqueName('uu'));
    const readOnly = hostFolder();
    const writable = hostFolder();
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--unprivileged'])).exitCode, 0);
    const updated = await thinLxc(['update', name, '--root', root, '--mount', `${readOnly}:/ro:ro,${writable}:/rw`]);
    assert.is(updated.exitCode, 0, updated.stderr);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await attach(name, 'stat -c %u:%g /ro/root-file /rw/root-file'), '65534:65534\n65534:65534');
    await must('lxc-stop', ['-n', name, '-k']);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  mounts('a privileged container\'s mounts are as before: plain binds, host owners as they are', async () => {
    const name = track(uniqueName('pm'));
    const readOnly = hostFolder();
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '-m', `${readOnly}:/ro:ro`])).exitCode, 0);
    assert.match(readFileSync(join(root, name, 'image/config'), 'utf8'), `lxc.mount.entry = ${readOnly} ro none bind,create=dir,ro 0 0`);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await attach(name, 'stat -c %u:%g /ro/root-file /ro/user-file'), '0:0\n1000:1000');
    await must('lxc-stop', ['-n', name, '-k']);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });
}

mounts.run();
