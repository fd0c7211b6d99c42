// End to end with real LXC: a busybox base made here, thin containers started with plain lxc-start,
// real overlayfs mounts. Everything made is removed in after(), also when a test fails.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { containerLockName } from '../../src/core/lock.js';
import { eventually, holdLock, waiterOf } from '../helpers/locks.js';
import { attach, containerSuite, hostMountsMentioning, must, removeLxcContainer, sh, startContainer, temporaryRoot, thinLxc, treeDigest, uniqueName } from '../helpers/host.js';

const LXCPATH = '/var/lib/lxc';
const { tests: e2e, runnable, cleanup, base, root } = await containerSuite('thin containers with real LXC', 'base');

if (runnable) {
  const baseDir = join(LXCPATH, base);
  let baseDigest = '';

  /** A thin container made by a test, removed by after() whatever happens. */
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  const create = (name: string, ...extra: string[]) => thinLxc(['create', name, '--base', base, '--root', root, ...extra]);

  e2e.before(async () => {
    baseDigest = treeDigest(baseDir);
  });

  e2e('create, then plain lxc-start: writes land in the write layer; stop leaves no mount; destroy leaves nothing', async () => {
    const name = track(uniqueName('a'));
    const created = await create(name);
    assert.is(created.exitCode, 0, created.stderr);
    assert.match(created.stdout, `Created thin container ${name} (id ${name}) from ${base} in `);
    const dir = join(root, name);
    for (const path of ['image/config', 'image/rootfs', 'wlayer', 'thin-lxc.ini']) assert.ok(existsSync(join(dir, path)), path);
    assert.equal(readdirSync(join(dir, 'image/rootfs')), [], 'the mount point stays empty on the host');
    assert.ok((await must('lxc-ls', ['-1'])).split('\n').includes(name), 'lxc-ls lists it');

    assert.is((await startContainer(name)).exitCode, 0);
    assert.is((await must('lxc-info', ['-n', name, '-s', '-H'])).trim(), 'RUNNING');
    assert.equal(hostMountsMentioning(root), [], 'the union is mounted only inside the container');
    assert.is(await attach(name, 'hostname'), name);
    const mac = readFileSync(join(dir, 'image/config'), 'utf8').match(/lxc\.net\.0\.hwaddr = (\S+)/)?.[1];
    assert.is(await attach(name, 'cat /sys/class/net/eth0/address'), mac);
    await attach(name, 'echo thin > /root/hello.txt && rm /etc/passwd');
    assert.is(readFileSync(join(dir, 'wlayer/root/hello.txt'), 'utf8'), 'thin\n');
    assert.not.ok(existsSync(join(baseDir, 'rootfs/root/hello.txt')), 'the base is not written');
    assert.ok(existsSync(join(baseDir, 'rootfs/etc/passwd')), 'a delete inside is a whiteout, not a delete in the base');

    await must('lxc-stop', ['-n', name]);
    assert.equal(hostMountsMentioning(root), []);
    assert.equal(hostMountsMentioning(name), []);

    assert.is((await startContainer(name)).exitCode, 0, 'it starts again');
    assert.is(await attach(name, 'cat /root/hello.txt; test -e /etc/passwd || echo gone'), 'thin\ngone', 'and keeps its writes');
    await must('lxc-stop', ['-n', name]);

    const destroyed = await thinLxc(['destroy', name, '--root', root]);
    assert.is(destroyed.exitCode, 0, destroyed.stderr);
    assert.not.ok(existsSync(dir));
    assert.not.ok(existsSync(join(LXCPATH, name)));
    assert.equal(hostMountsMentioning(root), []);
  });

  e2e("the original's command lines run verbatim", async () => {
    const id = uniqueName('orig-id');
    const name = track(uniqueName('orig'));
    const env = { THIN_LXC_ROOT: root };
    const cwd = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', cwd]));
    mkdirSync(join(cwd, 'app/log'), { recursive: true });
    writeFileSync(join(cwd, 'app/log/seen.txt'), 'log\n');
    const created = await thinLxc(
      ['-a', 'create', '-b', baseDir, '-id', id, '-n', name, '-ip', '10.0.3.67', '-p', '3000:3010', '-m', '/tmp:/app,app/log:/log'],
      { env, cwd },
    );
    assert.is(created.exitCode, 0, created.stderr);
    const shown = JSON.parse((await thinLxc(['show', name, '--json'], { env })).stdout) as Record<string, unknown>;
    assert.is(shown.id, id);
    assert.is(shown.ip, '10.0.3.67');
    assert.equal(shown.publish, ['3000:3010/tcp']);
    assert.equal(shown.mounts, ['/tmp:/app', `${cwd}/app/log:/log`]);

    assert.is((await startContainer(name, ['-f', join(root, id, 'image/config')])).exitCode, 0);
    assert.is(await attach(name, 'hostname'), name);
    assert.is(await attach(name, 'cat /log/seen.txt'), 'log', '-m bind-mounts the relative host path');
    await must('lxc-stop', ['-n', name]);

    const destroyed = await thinLxc(['-a', 'destroy', '-id', id], { env });
    assert.is(destroyed.exitCode, 0, destroyed.stderr);
    assert.not.ok(existsSync(join(root, id)));
    assert.not.ok(existsSync(join(LXCPATH, name)));
  });

  e2e('lxc-destroy removes everything thin-lxc made', async () => {
    const name = track(uniqueName('lxcd'));
    assert.is((await create(name)).exitCode, 0);
    assert.is((await startContainer(name)).exitCode, 0);
    await must('lxc-stop', ['-n', name]);
    await must('lxc-destroy', ['-n', name]);
    assert.not.ok(existsSync(join(root, name)));
    assert.not.ok(existsSync(join(LXCPATH, name)));
    assert.not.ok((await must('lxc-ls', ['-1'])).split('\n').includes(name));
  });

  e2e("lxc-destroy waits for the container's lock (a thin-lxc command working on it), then removes it", async () => {
    const name = track(uniqueName('lxcdl'));
    assert.is((await create(name)).exitCode, 0);
    const dir = join(root, name);
    const held = await holdLock(containerLockName(dir));
    try {
      const destroying = sh('lxc-destroy', ['-n', name]);
      assert.ok(await eventually(() => waiterOf(containerLockName(dir), dir) !== undefined), "lxc-destroy's hook waits for the container's lock");
      assert.ok(existsSync(join(dir, 'thin-lxc.ini')), 'nothing removed while the lock is held');
      await held.release();
      const destroyed = await destroying;
      assert.is(destroyed.exitCode, 0, destroyed.stderr);
    } finally {
      await held.release();
    }
    assert.not.ok(existsSync(dir));
    assert.not.ok(existsSync(join(LXCPATH, name)));
  });

  e2e('destroy refuses a running container; --force stops it first', async () => {
    const name = track(uniqueName('force'));
    assert.is((await create(name)).exitCode, 0);
    assert.is((await startContainer(name)).exitCode, 0);
    const refused = await thinLxc(['destroy', name, '--root', root]);
    assert.is(refused.exitCode, 2);
    assert.is(refused.stderr.trim(), `thin-lxc: ${name} is running: stop it with lxc-stop -n ${name}, or use destroy --force`);
    assert.ok(existsSync(join(root, name)));

    const forced = await thinLxc(['destroy', name, '--force', '--root', root]);
    assert.is(forced.exitCode, 0, forced.stderr);
    assert.is((await sh('lxc-info', ['-n', name])).exitCode, 1, 'LXC no longer knows it');
    assert.not.ok(existsSync(join(root, name)));
    assert.equal(hostMountsMentioning(root), []);
  });

  e2e('destroy removes a symlink in the write layer, never what it points at', async () => {
    const name = track(uniqueName('link'));
    assert.is((await create(name)).exitCode, 0);
    const outside = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', outside]));
    writeFileSync(join(outside, 'keep.txt'), 'precious\n');
    symlinkSync(outside, join(root, name, 'wlayer/escape'));
    symlinkSync(join(outside, 'keep.txt'), join(root, name, 'wlayer/escape-file'));
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
    assert.not.ok(existsSync(join(root, name)));
    assert.is(readFileSync(join(outside, 'keep.txt'), 'utf8'), 'precious\n');
  });

  e2e('a thin container on a thin container, and on an lxc-copy snapshot, sees its whole stack', async () => {
    const lower = track(uniqueName('lower'));
    assert.is((await create(lower)).exitCode, 0);
    assert.is((await startContainer(lower)).exitCode, 0);
    await attach(lower, 'echo from-lower > /root/lower.txt');
    await must('lxc-stop', ['-n', lower]);

    const upper = track(uniqueName('upper'));
    const created = await thinLxc(['create', upper, '--base', lower, '--root', root]);
    assert.is(created.exitCode, 0, created.stderr);
    const hooks = readFileSync(join(root, upper, 'image/config'), 'utf8').match(/thin-lxc-mount\.js/g);
    assert.is(hooks?.length, 1, "the lower thin container's own hook is not inherited");
    assert.is((await startContainer(upper)).exitCode, 0);
    assert.is(await attach(upper, 'cat /root/lower.txt'), 'from-lower');
    await attach(upper, 'echo from-upper > /root/upper.txt');
    await must('lxc-stop', ['-n', upper]);
    assert.not.ok(existsSync(join(root, lower, 'wlayer/root/upper.txt')));

    const list = await thinLxc(['list', '--root', root]);
    assert.match(list.stdout, `${join(LXCPATH, lower)}: ${upper}`);
    const refused = await thinLxc(['destroy', lower, '--root', root]);
    assert.is(refused.stderr.trim(), `thin-lxc: ${lower} is the base of thin containers ${upper}: destroy them first`);
    assert.is((await thinLxc(['destroy', upper, '--root', root])).exitCode, 0);
    assert.is((await thinLxc(['destroy', lower, '--root', root])).exitCode, 0);

    // lxc-copy records its snapshots in the original's directory, so the snapshot is taken of a base of its own.
    const snapshotOrigin = uniqueName('origin');
    cleanup.add(() => removeLxcContainer(snapshotOrigin));
    await must('lxc-create', ['-t', 'busybox', '-n', snapshotOrigin], 120_000);
    const snapshot = uniqueName('snap');
    cleanup.add(() => removeLxcContainer(snapshot));
    await must('lxc-copy', ['-n', snapshotOrigin, '-N', snapshot, '-s', '-B', 'overlay']);
    const delta = readFileSync(join(LXCPATH, snapshot, 'config'), 'utf8').match(/^lxc\.rootfs\.path = overlay:[^:]+:(\S+)$/m)?.[1];
    if (!delta) throw new Error('lxc-copy -s did not make an overlay snapshot');
    mkdirSync(join(delta, 'root'), { recursive: true });
    writeFileSync(join(delta, 'root/snap.txt'), 'from-snapshot\n');
    const onSnapshot = track(uniqueName('onsnap'));
    assert.is((await thinLxc(['create', onSnapshot, '--base', snapshot, '--root', root])).exitCode, 0);
    assert.is((await startContainer(onSnapshot)).exitCode, 0);
    assert.is(await attach(onSnapshot, 'cat /root/snap.txt; test -x /bin/busybox && echo base'), 'from-snapshot\nbase');
    await must('lxc-stop', ['-n', onSnapshot]);
  });

  e2e('a failing hook stops the start and says why, in the log and in hook.log', async () => {
    const doomedBase = uniqueName('doomed');
    cleanup.add(() => removeLxcContainer(doomedBase));
    await must('lxc-create', ['-t', 'busybox', '-n', doomedBase], 120_000);
    const name = track(uniqueName('nobase'));
    assert.is((await thinLxc(['create', name, '--base', doomedBase, '--root', root])).exitCode, 0);

    const rootfs = join(LXCPATH, doomedBase, 'rootfs');
    renameSync(rootfs, `${rootfs}.away`);
    cleanup.add(() => existsSync(`${rootfs}.away`) && renameSync(`${rootfs}.away`, rootfs));
    const log = join(root, `${name}.lxc.log`);
    const failed = await sh('lxc-start', ['-n', name, '-d', '-l', 'DEBUG', '-o', log]);
    assert.is.not(failed.exitCode, 0);
    const expected = `base layer ${rootfs} is gone: the base container was destroyed or moved; recreate it, or destroy this thin container`;
    assert.match(readFileSync(log, 'utf8'), expected);
    assert.match(readFileSync(join(root, name, 'hook.log'), 'utf8'), expected);
    assert.equal(hostMountsMentioning(root), []);

    renameSync(`${rootfs}.away`, rootfs);
    assert.is((await startContainer(name)).exitCode, 0, 'with the base back, it starts');
    await must('lxc-stop', ['-n', name]);
  });

  e2e('bad input exits 2 with one line and leaves nothing behind', async () => {
    const before = readdirSync(root).sort();
    const lxcBefore = readdirSync(LXCPATH).sort();
    const cases: [string[], string][] = [
      [['create', 'bad\nname', '--base', base], 'thin-lxc: name "bad\\nname" is not allowed'],
      [['create', uniqueName('x'), '--base', 'no-such-base'], 'thin-lxc: base "no-such-base" is not an LXC container'],
      [['create', uniqueName('x'), '--base', root], 'thin-lxc: base '],
      [['create', uniqueName('x'), '--base', base, '--ip', '10.0.3.300'], 'thin-lxc: ip "10.0.3.300" is not an IPv4 address'],
      [['create', uniqueName('x'), '--base', base, '-p', '0:80'], 'thin-lxc: publish "0:80": "0" is not a port'],
      [['create', uniqueName('x'), '--base', base, '-m', '/a:rel'], 'thin-lxc: mount "/a:rel": the container path "rel" must be absolute'],
      [['create', base, '--base', base], `thin-lxc: name "${base}" is already used by an LXC container`],
      [['destroy', 'no-such-container'], 'thin-lxc: no thin container with id or name "no-such-container"'],
      [['show', 'no-such-container'], 'thin-lxc: no thin container with id or name "no-such-container"'],
    ];
    if (!readFileSync('/proc/filesystems', 'utf8').includes('aufs')) {
      cases.push([['create', uniqueName('x'), '--base', base, '--fs', 'aufs'], 'thin-lxc: aufs is not available in this kernel']);
    }
    for (const [args, message] of cases) {
      const result = await thinLxc([...args, '--root', root]);
      assert.is(result.exitCode, 2, args.join(' '));
      assert.ok(result.stderr.startsWith(message), `${JSON.stringify(result.stderr)} should start with ${JSON.stringify(message)}`);
      assert.is(result.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
    }
    assert.equal(readdirSync(root).sort(), before);
    assert.equal(readdirSync(LXCPATH).sort(), lxcBefore);
  });

  e2e('the base is byte for byte untouched by all of the above', () => {
    assert.is(treeDigest(baseDir), baseDigest);
  });
}

e2e.run();
