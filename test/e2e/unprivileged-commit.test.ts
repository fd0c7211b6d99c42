// End to end for committing an unprivileged thin container: its write layer, stored shifted (root inside is
// HOST on disk), is read through an idmapped mount that shifts it back, in the copy's own mount namespace, so
// the image is owned as the base is and no shifted id leaks into it.
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyMergedView } from '../../src/core/commands.js';
import { idmapMountCommand, shiftDown } from '../../src/union/idmap.js';
import { readOnlyOptions } from '../../src/union/mount.js';
import { attach, Cleanup, containerSuite, must, removeLxcContainer, sh, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually } from '../helpers/locks.js';
import { CLI } from '../helpers/paths.js';
import { processesMentioning } from '../helpers/processes.js';

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

const { tests: commits, runnable, cleanup: suiteCleanup, base, root } = await containerSuite('thin-lxc commit of unprivileged thin containers with real LXC', 'ucbase');

/** Every path below `dir` (not following symlinks) with its owner, by path relative to `dir`. */
function owners(dir: string): Map<string, { uid: number; gid: number; type: number }> {
  const found = new Map<string, { uid: number; gid: number; type: number }>();
  const walk = (path: string) => {
    const stat = lstatSync(path);
    found.set(relative(dir, path), { uid: stat.uid, gid: stat.gid, type: stat.mode & 0o170000 });
    if (stat.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry));
  };
  walk(dir);
  return found;
}

/** Mount points at or below `dir` in every mount namespace this host root can read, with the pid that sees each. */
function mountsAnywhere(dir: string): string[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((pid) => {
      try {
        return readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
          .split('\n')
          .map((line) => line.split(' ')[4] ?? '')
          .filter((point) => point === dir || point.startsWith(`${dir}/`))
          .map((point) => `${pid}: ${point}`);
      } catch {
        return []; // gone meanwhile
      }
    });
}

if (runnable) {
  const track = (name: string) => {
    suiteCleanup.add(() => removeLxcContainer(name));
    return name;
  };

  commits("an unprivileged container's image is owned as the base is (root's files 0, not 100000; 1234:5678 as chowned; setuid kept), its config is a privileged LXC container's, lxc-start boots it and thin containers stack on it, privileged and unprivileged", async () => {
    const thin = track(uniqueName('usrc'));
    const image = track(uniqueName('uimg'));
    assert.is((await thinLxc(['create', thin, '--base', base, '--root', root, '--unprivileged'])).exitCode, 0);
    assert.is((await startContainer(thin)).exitCode, 0);
    await attach(thin, 'echo made > /root/made && echo owned > /root/owned && chown 1234:5678 /root/owned && cp /bin/busybox /root/suid && chmod 4755 /root/suid && mkdir /root/dir');
    await must('lxc-stop', ['-n', thin]);
    // What the copy starts from: the write layer stored shifted on disk.
    assert.equal([lstatSync(join(root, thin, 'wlayer/root/made')).uid, lstatSync(join(root, thin, 'wlayer/root/owned')).uid], [100000, 101234]);

    const dry = await thinLxc(['commit', thin, image, '--root', root, '--dry-run']);
    assert.match(dry.stdout, `# ${join(root, thin, 'wlayer')} (stored in the map 100000:65536) would be read with ids 100000.. shown as 0..,`);
    const committed = await thinLxc(['commit', thin, image, '--root', root]);
    assert.is(committed.exitCode, 0, committed.stderr);
    assert.equal(mountsAnywhere(join(root, thin)), [], 'no mount of the copy is left in any namespace');

    const rootfs = join('/var/lib/lxc', image, 'rootfs');
    const seen = (path: string) => {
      const stat = lstatSync(join(rootfs, path));
      return [stat.uid, stat.gid, (stat.mode & 0o7777).toString(8)];
    };
    assert.equal(seen('root/made'), [0, 0, '644']);
    assert.equal(seen('root/owned'), [1234, 5678, '644']);
    assert.equal(seen('root/suid'), [0, 0, '4755']);
    assert.equal(seen('root/dir').slice(0, 2), [0, 0]);
    const inImage = owners(rootfs);
    const leaked = [...inImage].filter(([, owner]) => owner.uid >= 100000 || owner.gid >= 100000).map(([path]) => path);
    assert.equal(leaked, [], 'no shifted id in the image');
    const differ = [...owners(join('/var/lib/lxc', base, 'rootfs'))]
      .filter(([path, owner]) => {
        const copied = inImage.get(path);
        return copied !== undefined && copied.type === owner.type && (copied.uid !== owner.uid || copied.gid !== owner.gid);
      })
      .map(([path]) => path);
    assert.equal(differ, [], "the base's files are owned as in the base");

    const config = readFileSync(join('/var/lib/lxc', image, 'config'), 'utf8');
    assert.not.match(config, /lxc\.idmap|lxc\.monitor\.unshare|lxc\.hook\.|thin-lxc-\w+\.js/);

    assert.is((await startContainer(image)).exitCode, 0, 'lxc-start boots it');
    assert.is(await attach(image, 'cat /root/made; stat -c %u:%g /root/owned'), 'made\n1234:5678');
    await must('lxc-stop', ['-n', image, '-k']);
    for (const extra of [[], ['--unprivileged']]) {
      const stacked = track(uniqueName('ustk'));
      const created = await thinLxc(['create', stacked, '--base', image, '--root', root, ...extra]);
      assert.is(created.exitCode, 0, created.stderr);
      assert.is((await startContainer(stacked)).exitCode, 0);
      assert.is(await attach(stacked, 'cat /root/made; stat -c %u:%g /root/made /root/owned; cat /proc/self/uid_map | tr -s " "'), `made\n0:0\n1234:5678\n${extra.length ? ' 0 100000 65536' : ' 0 0 4294967295'}`);
      await must('lxc-stop', ['-n', stacked, '-k']);
      assert.is((await thinLxc(['destroy', stacked, '--root', root])).exitCode, 0);
    }
    assert.is((await thinLxc(['destroy', thin, '--root', root])).exitCode, 0);
  });

  commits("a setuid program root inside made is setuid-root in the committed image, so the image's directory lets no other local user in: uid 65534 cannot run it by its path", async () => {
    const thin = track(uniqueName('usui'));
    const image = track(uniqueName('usuc'));
    assert.is((await thinLxc(['create', thin, '--base', base, '--root', root, '--unprivileged'])).exitCode, 0);
    assert.is((await startContainer(thin)).exitCode, 0);
    // Named after an applet, so busybox runs as `id` by its name.
    await attach(thin, 'cp /bin/busybox /id && chmod 4755 /id');
    await must('lxc-stop', ['-n', thin]);
    const committed = await thinLxc(['commit', thin, image, '--root', root]);
    assert.is(committed.exitCode, 0, committed.stderr);
    const program = join('/var/lib/lxc', image, 'rootfs/id');
    const stat = lstatSync(program);
    assert.equal([stat.uid, (stat.mode & 0o7777).toString(8)], [0, '4755'], 'what is at stake: a setuid-root program');
    // Through a shell: setpriv itself ran it here from a directory uid 65534 cannot search (util-linux 2.38), so
    // the path is looked up by a shell that is uid 65534 throughout, as any local user is.
    const ran = await sh('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', '--', '/bin/sh', '-c', 'exec "$0"', program]);
    assert.is.not(ran.exitCode, 0, `uid 65534 ran the setuid-root program: ${ran.stdout}`);
    assert.match(ran.stderr, 'Permission denied');
    assert.is((lstatSync(join('/var/lib/lxc', image)).mode & 0o777).toString(8), '770', "the image's directory is as lxc-create makes one");
    assert.is((await thinLxc(['destroy', thin, '--root', root])).exitCode, 0);
  });

  commits("thin on thin: an unprivileged container over an unprivileged thin base commits both write layers with the base's owners", async () => {
    const lower = track(uniqueName('ulow'));
    const upper = track(uniqueName('uupp'));
    const image = track(uniqueName('utim'));
    assert.is((await thinLxc(['create', lower, '--base', base, '--root', root, '--unprivileged'])).exitCode, 0);
    assert.is((await startContainer(lower)).exitCode, 0);
    await attach(lower, 'echo low > /root/low && chown 7:8 /root/low');
    await must('lxc-stop', ['-n', lower]);
    const created = await thinLxc(['create', upper, '--base', lower, '--root', root, '--unprivileged']);
    assert.is(created.exitCode, 0, created.stderr);
    assert.is((await startContainer(upper)).exitCode, 0);
    await attach(upper, 'echo up > /root/up');
    await must('lxc-stop', ['-n', upper]);
    assert.equal([lstatSync(join(root, lower, 'wlayer/root/low')).uid, lstatSync(join(root, upper, 'wlayer/root/up')).uid], [100007, 100000]);
    const committed = await thinLxc(['commit', upper, image, '--root', root]);
    assert.is(committed.exitCode, 0, committed.stderr);
    const rootfs = join('/var/lib/lxc', image, 'rootfs');
    const owner = (path: string) => [lstatSync(join(rootfs, path)).uid, lstatSync(join(rootfs, path)).gid];
    assert.equal([owner('root/low'), owner('root/up'), owner('root'), owner('bin/busybox')], [[7, 8], [0, 0], [0, 0], [0, 0]]);
    assert.equal([...owners(rootfs)].filter(([, found]) => found.uid >= 100000 || found.gid >= 100000).map(([path]) => path), [], 'no shifted id in the image');
    for (const name of [upper, lower]) assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  commits('an unprivileged --disk container (its write layer in an ext4 image) commits with the base\'s owners', async () => {
    const thin = track(uniqueName('udsk'));
    const image = track(uniqueName('udim'));
    const created = await thinLxc(['create', thin, '--base', base, '--root', root, '--unprivileged', '--disk', '64M']);
    assert.is(created.exitCode, 0, created.stderr);
    assert.is((await startContainer(thin)).exitCode, 0);
    await attach(thin, 'echo made > /root/made && echo owned > /root/owned && chown 1234:5678 /root/owned');
    await must('lxc-stop', ['-n', thin]);
    const committed = await thinLxc(['commit', thin, image, '--root', root]);
    assert.is(committed.exitCode, 0, committed.stderr);
    const rootfs = join('/var/lib/lxc', image, 'rootfs');
    const owner = (path: string) => [lstatSync(join(rootfs, path)).uid, lstatSync(join(rootfs, path)).gid];
    assert.equal([owner('root/made'), owner('root/owned'), owner('root')], [[0, 0], [1234, 5678], [0, 0]]);
    assert.equal([...owners(rootfs)].filter(([, found]) => found.uid >= 100000 || found.gid >= 100000).map(([path]) => path), [], 'no shifted id in the image');
    assert.equal(mountsAnywhere(join(root, thin)), [], 'no mount of the copy is left in any namespace');
    assert.is((await thinLxc(['destroy', thin, '--root', root])).exitCode, 0);
  });

  commits('while an unprivileged commit copies, the host sees none of its mounts; killed with SIGKILL, it leaves no mount and no process anywhere', async () => {
    const thin = track(uniqueName('ukil'));
    const image = track(uniqueName('ukim'));
    assert.is((await thinLxc(['create', thin, '--base', base, '--root', root, '--unprivileged'])).exitCode, 0);
    const big = join(root, thin, 'wlayer/big');
    await must('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=300', 'status=none'], 120_000);
    chownSync(big, 100000, 100000);
    const child = execa(process.execPath, [CLI, 'commit', thin, image, '--root', root], { reject: false, timeout: 120_000, stdin: 'ignore' });
    const target = `/var/lib/lxc/${image}/rootfs/`;
    const rsyncs = () => processesMentioning(target).filter((found) => found.program.endsWith('rsync'));
    try {
      assert.ok(await eventually(() => rsyncs().length > 0, 60_000), 'rsync started copying');
      const held = rsyncs().map((found) => found.pid);
      for (const pid of held) process.kill(pid, 'SIGSTOP');
      const copying = mountsAnywhere(join(root, thin));
      assert.ok(copying.some((line) => line.endsWith('/wlayer')), `the copy's namespace has the idmapped write layer: ${copying.join(', ')}`);
      assert.equal(mountsAnywhere(join(root, thin)).filter((line) => line.startsWith(`${process.pid}:`)), [], 'the host sees none of them');
      assert.equal(readFileSync('/proc/1/mountinfo', 'utf8').split('\n').filter((line) => line.includes(join(root, thin))), [], "nor does the host's init");
      process.kill(child.pid!, 'SIGKILL');
      await child;
      assert.ok(await eventually(() => processesMentioning(target).length === 0, 10_000), 'no process of the killed commit is left');
      assert.ok(await eventually(() => mountsAnywhere(join(root, thin)).length === 0, 10_000), `no mount is left anywhere: ${mountsAnywhere(join(root, thin)).join(', ')}`);
    } finally {
      for (const found of processesMentioning(target)) process.kill(found.pid, 'SIGKILL');
    }
    assert.not.ok(existsSync(join('/var/lib/lxc', image, 'config')), 'the interrupted copy is no container');
    const again = await thinLxc(['commit', thin, image, '--root', root]);
    assert.is(again.exitCode, 0, again.stderr);
    assert.equal([lstatSync(join('/var/lib/lxc', image, 'rootfs/big')).uid, lstatSync(join('/var/lib/lxc', image, 'rootfs/big')).size], [0, 300 * 2 ** 20]);
    assert.is((await thinLxc(['destroy', thin, '--root', root])).exitCode, 0);
  });
}

commits.run();
