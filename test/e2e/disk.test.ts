// End to end for --disk: a write layer that cannot grow past its size. On this host's root (no project quota) it
// is a sparse ext4 image per container, mounted by the mount hook in the container's namespace only.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { readState } from '../../src/state/state.js';
import { skipUnless } from '../helpers/skip.js';
import { attach, containerSuite, hostMountsMentioning, must, removeLxcContainer, sh, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { loopsOf } from '../helpers/images.js';

const { tests: disk, runnable, cleanup, base, root } = await containerSuite('--disk with real LXC', 'dbase');


/**
 * The loop devices still on `image` once its users are gone, looked at for a few seconds: the kernel clears an
 * autoclear device when its last user lets go, which the end of a namespace (a monitor's exit) does a moment later.
 */
async function loopsLeft(image: string): Promise<string[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (loopsOf(image).length === 0) return [];
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return loopsOf(image);
}

if (runnable) {
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };

  disk('an image on a root without project quota: a writer inside gets ENOSPC at the limit, the host file stays sparse and the loop device goes at stop', async () => {
    const name = track(uniqueName('img'));
    const other = track(uniqueName('free'));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M']);
    assert.is(created.exitCode, 0, created.stderr);
    assert.is((await thinLxc(['create', other, '--base', base, '--root', root])).exitCode, 0);
    const dir = join(root, name);
    const state = readState(dir);
    assert.equal([state.disk, state.diskMode, state.diskProject, state.diskMount], [String(64 * 2 ** 20), 'image', null, null]);
    const image = join(dir, 'disk.img');
    assert.is(statSync(image).size, 64 * 2 ** 20);
    assert.ok(statSync(image).blocks * 512 < 16 * 2 ** 20, `made sparse: ${statSync(image).blocks * 512} bytes allocated`);

    assert.is((await startContainer(name)).exitCode, 0);
    assert.is((await startContainer(other)).exitCode, 0);
    // overlayfs reports its upper layer's filesystem: the image, not the host's.
    const sizeKiB = Number(await attach(name, "df -k / | tail -1 | awk '{print $2}'"));
    assert.ok(sizeKiB > 40 * 1024 && sizeKiB <= 64 * 1024, `/ inside is ${sizeKiB} KiB`);
    assert.equal(hostMountsMentioning(dir), [], 'the host never sees the image mounted');
    assert.is(loopsOf(image).length, 1, 'one loop device while it runs');
    const filled = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=100']);
    assert.is.not(filled.exitCode, 0);
    assert.match(filled.stderr, 'No space left on device');
    const written = Number(await attach(name, 'wc -c < /big'));
    assert.ok(written > 32 * 2 ** 20 && written <= 64 * 2 ** 20, `wrote ${written} bytes before ENOSPC`);
    assert.ok(statSync(image).blocks * 512 <= 64 * 2 ** 20, 'the host file holds no more than the limit');
    assert.is(await attach(other, 'dd if=/dev/zero of=/big bs=1M count=80 2>/dev/null && wc -c < /big'), String(80 * 2 ** 20), 'another container is not limited by it');
    const shown = JSON.parse((await thinLxc(['show', name, '--root', root, '--json'])).stdout) as { disk: string; diskMode: string; diskUsedBytes: number };
    assert.equal([shown.disk, shown.diskMode], [String(64 * 2 ** 20), 'image']);
    assert.ok(shown.diskUsedBytes >= written && shown.diskUsedBytes <= 64 * 2 ** 20, `show: ${shown.diskUsedBytes} bytes used while running`);
    const listed = await thinLxc(['list', '--root', root]);
    assert.match(listed.stdout, new RegExp(`${name}\\s.*\\s(6\\d|5\\d|4\\d)M/64M\\s*$`, 'm'));
    await attach(name, 'rm /big && echo kept > /root/kept');

    await must('lxc-stop', ['-n', name]);
    assert.equal(await loopsLeft(image), [], 'the loop device is released when the container stops');
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await attach(name, 'cat /root/kept'), 'kept', 'what it wrote is kept across starts');
    await must('lxc-stop', ['-n', name]);
    await must('lxc-stop', ['-n', other]);
    const stopped = JSON.parse((await thinLxc(['show', name, '--root', root, '--json'])).stdout) as { diskUsedBytes: number; diskHostBytes: number };
    assert.ok(stopped.diskUsedBytes > 0 && stopped.diskUsedBytes < 16 * 2 ** 20, `show: ${stopped.diskUsedBytes} bytes used once stopped (the superblock)`);
    // The host's side: the file's blocks, which the 100M written and removed inside left allocated (no discard).
    assert.is(stopped.diskHostBytes, statSync(image).blocks * 512, 'show --json: the image\'s blocks on the host');
    assert.ok(stopped.diskHostBytes > 32 * 2 ** 20, `the host still holds what was written: ${stopped.diskHostBytes}`);
    assert.match((await thinLxc(['show', name, '--root', root])).stdout, new RegExp(`^disk: +\\S+ used of 64M \\(image ${dir}/disk.img, \\S+ of the host's disk\\)$`, 'm'));

    const destroyed = await thinLxc(['destroy', name, '--root', root]);
    assert.is(destroyed.exitCode, 0, destroyed.stderr);
    assert.not.ok(existsSync(dir));
    assert.equal(await loopsLeft(image), []);
  });

  disk('update --disk grows an image while it is stopped; shrinking, growing it running and taking it away are refused in one line', async () => {
    const name = track(uniqueName('grow'));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '32M'])).exitCode, 0);
    const refusals: [string, string][] = [
      ['16M', `thin-lxc: ${name}'s disk image cannot shrink (33554432 to 16777216 bytes): give a size of at least 33554432 bytes`],
      ['none', `thin-lxc: ${name}'s write layer lives in its disk image, which cannot be taken away: commit it (thin-lxc commit ${name} NEW) and create from NEW without --disk`],
    ];
    for (const [size, message] of refusals) {
      const refused = await thinLxc(['update', name, '--root', root, '--disk', size]);
      assert.is(refused.stderr.trim(), message);
      assert.is(refused.exitCode, 2);
    }
    assert.is((await startContainer(name)).exitCode, 0);
    const running = await thinLxc(['update', name, '--root', root, '--disk', '128M']);
    assert.is(running.stderr.trim(), `thin-lxc: ${name} is running, and its disk image grows only while it is stopped: lxc-stop -n ${name}, then update again`);
    assert.is(readState(join(root, name)).disk, String(32 * 2 ** 20), 'the refused update changed nothing');
    await attach(name, 'echo before > /root/before');
    await must('lxc-stop', ['-n', name]);
    const grown = await thinLxc(['update', name, '--root', root, '--disk', '128M']);
    assert.is(grown.exitCode, 0, grown.stderr);
    assert.match(grown.stdout, 'disk: 134217728');
    assert.is(statSync(join(root, name, 'disk.img')).size, 128 * 2 ** 20);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await attach(name, 'cat /root/before'), 'before', 'its files are kept');
    assert.is(await attach(name, 'dd if=/dev/zero of=/big bs=1M count=80 2>/dev/null && wc -c < /big'), String(80 * 2 ** 20), 'the grown room is there');
    await must('lxc-stop', ['-n', name]);
  });

  disk('diff and commit read an image read-only in a namespace of their own, running or stopped; a thin container cannot stack on one', async () => {
    const name = track(uniqueName('dc'));
    const committed = track(uniqueName('dcc'));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M'])).exitCode, 0);
    const dir = join(root, name);
    const image = join(dir, 'disk.img');
    assert.is((await startContainer(name)).exitCode, 0);
    await attach(name, 'echo one > /root/one && mkdir /made && rm /bin/vi && ln -s /etc /root/link && sync');
    const running = await thinLxc(['diff', name, '--root', root]);
    assert.is(running.exitCode, 0, running.stderr);
    for (const line of ['D /bin/vi', 'A /made', 'A /root/one', 'A /root/link']) assert.match(running.stdout, new RegExp(`^${line}$`, 'm'));
    assert.equal(hostMountsMentioning(dir), [], 'diff mounted nothing the host sees');
    assert.is(loopsOf(image).length, 1, 'diff of a running container uses its loop device, not a second one over the same file');
    await must('lxc-stop', ['-n', name]);
    assert.equal(await loopsLeft(image), [], 'nothing of diff holds the image once it is done');
    const stopped = await thinLxc(['diff', name, '--root', root]);
    assert.is(stopped.exitCode, 0, stopped.stderr);
    for (const line of ['D /bin/vi', 'A /made', 'A /root/one', 'A /root/link']) assert.match(stopped.stdout, new RegExp(`^${line}$`, 'm'));
    assert.equal(await loopsLeft(image), [], 'the read-only loop device of a stopped container\'s diff is released');

    const copied = await thinLxc(['commit', name, committed, '--root', root]);
    assert.is(copied.exitCode, 0, copied.stderr);
    const rootfs = join('/var/lib/lxc', committed, 'rootfs');
    assert.is(readFileSync(join(rootfs, 'root/one'), 'utf8'), 'one\n');
    assert.not.ok(existsSync(join(rootfs, 'bin/vi')), 'the deletion is committed');
    assert.ok(statSync(join(rootfs, 'made')).isDirectory());
    assert.equal(await loopsLeft(image), [], 'commit released its loop device');
    assert.equal(hostMountsMentioning(dir), []);

    const stacked = await thinLxc(['create', uniqueName('on'), '--base', name, '--root', root]);
    assert.is(stacked.exitCode, 2);
    assert.is(stacked.stderr.trim(), `thin-lxc: base "${name}" keeps its write layer in a disk image (--disk), which only its own start mounts: commit it (thin-lxc commit ${name} NEW) and stack on NEW`);
  });

  disk('--unprivileged --disk: the image is mounted in the monitor\'s namespace; root inside gets ENOSPC, its files are owned by the map on the host; a reboot mounts it again, a stop releases it', async () => {
    const name = track(uniqueName('uimg'));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--unprivileged', '--disk', '64M']);
    assert.is(created.exitCode, 0, created.stderr);
    const dir = join(root, name);
    const image = join(dir, 'disk.img');
    assert.is((await startContainer(name)).exitCode, 0);
    assert.match(await attach(name, 'cat /proc/self/uid_map'), /^\s*0\s+100000\s+65536$/);
    const filled = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=100']);
    assert.match(filled.stderr, 'No space left on device');
    await attach(name, 'rm /big && echo mine > /root/mine && sync');
    assert.equal(hostMountsMentioning(dir), [], 'the host never sees the image mounted');
    assert.is(loopsOf(image).length, 1);
    // Inside, the container reboots itself: the same monitor starts it again, and its pre-start mounts the image again.
    const initPid = async () => (await sh('lxc-info', ['-n', name, '-p', '-H'])).stdout.trim();
    const firstInit = await initPid();
    await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'reboot']);
    let after = '';
    for (let attempt = 0; attempt < 120 && after !== 'mine'; attempt++) {
      const init = await initPid();
      if (init !== '' && init !== firstInit) after = (await sh('lxc-attach', ['-n', name, '--', '/bin/cat', '/root/mine'])).stdout.trim();
      if (after !== 'mine') await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.is(after, 'mine', 'its files are there after a reboot');
    assert.is(loopsOf(image).length, 1, 'one loop device after the reboot, not a second over the same file');
    await must('lxc-stop', ['-n', name]);
    assert.equal(await loopsLeft(image), [], 'released at stop');
    const diffed = await thinLxc(['diff', name, '--root', root]);
    assert.match(diffed.stdout, /^A \/root\/mine$/m);
    const left = await loopsLeft(image);
    // What holds it, if anything does: said in the failure.
    const holders = left.length === 0 ? '' : (await sh('sh', ['-c', `losetup -a; grep -l ${dir} /proc/[0-9]*/mountinfo; cat /sys/block/${left[0]}/ro`])).stdout;
    assert.equal(left, [], `diff released its loop device ${holders}`);
    const owner = await must('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t ext4 -o loop,ro "$1" "$2" && stat -c %u:%g "$2/upper/root/mine"', 'sh', image, join(dir, 'disk')]);
    assert.is(owner.trim(), '100000:100000', 'root inside made it: stored shifted in the image, as in a write layer on disk');
  });

  disk('--ephemeral --disk, privileged and unprivileged: its stop removes the container with its image, and the loop device goes', async () => {
    for (const extra of [[], ['--unprivileged']]) {
      const name = track(uniqueName('eph'));
      const created = await thinLxc(['create', name, '--base', base, '--root', root, '--ephemeral', '--disk', '32M', ...extra]);
      assert.is(created.exitCode, 0, created.stderr);
      const image = join(root, name, 'disk.img');
      assert.is((await startContainer(name)).exitCode, 0);
      await attach(name, 'echo x > /root/x');
      assert.is(loopsOf(image).length, 1);
      await must('lxc-stop', ['-n', name]);
      assert.not.ok(existsSync(join(root, name)), `${extra.join(' ') || 'privileged'}: removed at its stop`);
      assert.equal(await loopsLeft(image), []);
      assert.equal(hostMountsMentioning(join(root, name)), []);
    }
  });

  disk('limits that promise more than the filesystem has free: create and update --disk say so in one line on stderr and still do it (exit 0)', async () => {
    // A small filesystem of the test's own (no reserved blocks), so what is free is known and nobody else writes there.
    const work = mkdtempSync('/tmp/thin-lxc-small-');
    cleanup.add(() => sh('rm', ['-rf', work]));
    await must('truncate', ['-s', '160M', join(work, 'fs.img')]);
    await must('mkfs.ext4', ['-q', '-m', '0', join(work, 'fs.img')]);
    const mountPoint = join(work, 'fs');
    mkdirSync(mountPoint);
    await must('mount', ['-o', 'loop', join(work, 'fs.img'), mountPoint]);
    cleanup.add(() => sh('umount', ['-l', mountPoint]));
    const small = join(mountPoint, 'containers');
    const [first, second] = [track(uniqueName('oa')), track(uniqueName('ob'))];
    const fits = await thinLxc(['create', first, '--base', base, '--root', small, '--disk', '64M']);
    assert.is(fits.exitCode, 0, fits.stderr);
    assert.is(fits.stderr, '', 'a limit that fits in what is free: no warning');
    const together = await thinLxc(['create', second, '--base', base, '--root', small, '--disk', '96M']);
    assert.is(together.exitCode, 0, together.stderr);
    assert.match(
      together.stderr.trim(),
      new RegExp(`^thin-lxc: warning: the disk limits under ${small} may still take \\S+ in all \\(each limit less what its container holds\\), more than the \\S+ free there: together they can fill that filesystem before their limits$`),
    );
    assert.is(readState(join(small, second)).disk, String(96 * 2 ** 20), 'made as asked');
    // As much as the filesystem holds: more than is free, with the two images' own blocks on it.
    const stat = statfsSync(mountPoint);
    const most = `${Math.floor((stat.blocks * stat.bsize) / 2 ** 20)}M`;
    const grown = await thinLxc(['update', first, '--root', small, '--disk', most]);
    assert.is(grown.exitCode, 0, grown.stderr);
    assert.match(grown.stderr.trim(), new RegExp(`^thin-lxc: warning: --disk ${most} is more than the \\S+ free under ${small} now: a limit reserves no space, so ${first} can fill that filesystem before it reaches its limit$`));
    assert.match(grown.stdout, `disk: ${Number(most.slice(0, -1)) * 2 ** 20}`);
  });

  disk('--disk that is no size, too small, or with --tmpfs is refused in one line and leaves nothing; --dry-run names the image', async () => {
    const before = readdirSync(root).sort();
    for (const [args, message] of [
      [['--disk', 'lots'], 'thin-lxc: disk "lots" is not a size: write it like 512M or 2G'],
      [['--disk', '1M'], 'thin-lxc: disk "1M" is too small for a write layer: give at least 16M'],
      [['--disk', '1G', '--tmpfs=512M'], 'thin-lxc: --disk and --tmpfs do not go together (a tmpfs write layer is already limited by its size, --tmpfs=512M): choose one'],
      // More than the root's filesystem holds: a limit the host would reach first protects nothing (and past 16T ext4 cannot make the file).
      [['--disk', '20T'], new RegExp(`^thin-lxc: --disk 20T is more than the filesystem under ${root} holds \\(\\d+(\\.\\d)?[MGT]\\): give a limit it can reach$`)],
    ] as const) {
      const name = uniqueName('bad');
      const refused = await thinLxc(['create', name, '--base', base, '--root', root, ...args]);
      assert.is(refused.exitCode, 2, refused.stderr);
      if (typeof message === 'string') assert.is(refused.stderr.trim(), message);
      else assert.match(refused.stderr.trim(), message);
      assert.not.ok(existsSync(join('/var/lib/lxc', name)));
    }
    assert.equal(readdirSync(root).sort(), before);
    const name = uniqueName('dry');
    const dry = await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '1G', '--dry-run']);
    assert.is(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stdout, `# Disk limit: 1073741824 bytes, a sparse ext4 image ${join(root, name)}/disk.img holding the write layer, mounted with -o loop at each start`);
    assert.equal(readdirSync(root).sort(), before);
  });
}

disk.run();

/**
 * The quota path, on its own filesystem: an ext4 made with project quota in a loop-mounted image, mounted with
 * prjquota, holds the test's root. It needs a kernel that can mount one (CONFIG_QUOTA and CONFIG_QFMT_V2). A
 * kernel built without them (its own config says so, and the mount was refused) gets the test of what create does
 * there instead; anything else that keeps the quota test from running fails in CI, as skipUnless does.
 */
const quotaReason = await cannotMountProjectQuota();
const kernelCannot = quotaReason !== null && quotaReason.startsWith('this kernel was built without');
const { tests: quota, runnable: quotaRunnable, cleanup: quotaCleanup, base: quotaBase } = await containerSuite('--disk on a filesystem with project quota', 'qbase');

/** An ext4 of `size` in a loop file, made with `features` and mounted on the host with `options` (gone in after()). */
function ownFilesystem(size: string, features: readonly string[], options: string): { mountPoint: string; root: string; mount(): Promise<void> } {
  const work = mkdtempSync('/tmp/thin-lxc-quota-');
  const mountPoint = join(work, 'fs');
  return {
    mountPoint,
    root: join(mountPoint, 'containers'),
    async mount() {
      quotaCleanup.add(() => sh('rm', ['-rf', work]));
      await must('truncate', ['-s', size, join(work, 'fs.img')]);
      await must('mkfs.ext4', ['-q', ...features, join(work, 'fs.img')]);
      mkdirSync(mountPoint);
      await must('mount', ['-o', options, join(work, 'fs.img'), mountPoint]);
      // -o loop: the loop device goes with the unmount, also when a test failed.
      quotaCleanup.add(() => sh('umount', ['-l', mountPoint]));
    },
  };
}

if (quotaRunnable && quotaReason === null) {
  const fs = ownFilesystem('512M', ['-O', 'quota,project'], 'loop,prjquota');
  const { mountPoint, root: quotaRoot } = fs;
  quota.before(() => fs.mount());
  const track = (name: string) => {
    quotaCleanup.add(() => removeLxcContainer(name));
    return name;
  };

  quota('a project quota on wlayer and work: EDQUOT inside at the limit, an inode limit with it, another container on the same filesystem unaffected; update changes it running; destroy clears it', async () => {
    const name = track(uniqueName('q'));
    const other = track(uniqueName('qo'));
    const created = await thinLxc(['create', name, '--base', quotaBase, '--root', quotaRoot, '--disk', '32M']);
    assert.is(created.exitCode, 0, created.stderr);
    assert.is((await thinLxc(['create', other, '--base', quotaBase, '--root', quotaRoot])).exitCode, 0);
    const dir = join(quotaRoot, name);
    const state = readState(dir);
    assert.equal([state.disk, state.diskMode, state.diskMount], [String(32 * 2 ** 20), 'quota', mountPoint]);
    assert.not.ok(existsSync(join(dir, 'disk.img')));
    const project = state.diskProject!;
    for (const layer of ['wlayer', 'work']) assert.match(await must('lsattr', ['-pd', join(dir, layer)]), new RegExp(`^\\s*${project}\\s+\\S*P`), layer);
    // Blocks (KiB) and inodes: `#ID -- USED SOFT HARD [GRACE] FILES SOFT HARD [GRACE]`; 32M gets 8192 inodes, as an image would.
    const limits = (await must('repquota', ['-P', '-n', '-v', mountPoint])).split('\n').find((row) => row.startsWith(`#${project} `)) ?? '';
    assert.match(limits, /^#\d+\s+--\s+\d+\s+0\s+32768\s+\d+\s+0\s+8192\s*$/, `repquota: ${limits}`);

    assert.is((await startContainer(name)).exitCode, 0);
    assert.is((await startContainer(other)).exitCode, 0);
    const filled = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=100']);
    assert.is.not(filled.exitCode, 0);
    assert.match(filled.stderr, 'Disk quota exceeded');
    assert.is(await attach(other, 'dd if=/dev/zero of=/big bs=1M count=60 2>/dev/null && wc -c < /big'), String(60 * 2 ** 20));
    const shown = JSON.parse((await thinLxc(['show', name, '--root', quotaRoot, '--json'])).stdout) as { diskUsedBytes: number };
    assert.ok(shown.diskUsedBytes > 16 * 2 ** 20 && shown.diskUsedBytes <= 32 * 2 ** 20, String(shown.diskUsedBytes));
    await attach(name, 'rm /big');
    // Empty files cost no block: the inode limit stops them.
    const files = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'mkdir /many && cd /many && i=0; while [ $i -lt 9000 ] && : > f$i; do i=$((i+1)); done; echo $i']);
    assert.ok(Number(files.stdout.trim()) < 8192, `empty files stopped by the inode limit: made ${files.stdout.trim()}`);
    assert.match(files.stderr, 'Disk quota exceeded');
    await attach(name, 'rm -rf /many');

    const raised = await thinLxc(['update', name, '--root', quotaRoot, '--disk', '96M']);
    assert.is(raised.exitCode, 0, raised.stderr);
    assert.is(await attach(name, 'dd if=/dev/zero of=/big bs=1M count=64 2>/dev/null && wc -c < /big'), String(64 * 2 ** 20), 'the raised limit holds at once');
    await must('lxc-stop', ['-n', name]);
    await must('lxc-stop', ['-n', other]);

    assert.is((await thinLxc(['destroy', name, '--root', quotaRoot])).exitCode, 0);
    const report = await must('repquota', ['-P', '-n', '-v', mountPoint]);
    const line = report.split('\n').find((row) => row.startsWith(`#${project} `));
    assert.ok(line === undefined || /^#\d+\s+--\s+0\s+0\s+0\b/.test(line), `the project's limit and use are gone: ${line}`);
  });
} else if (quotaRunnable && kernelCannot) {
  // Such a kernel may mount an ext4 made with -O quota,project without prjquota; this one refuses even that
  // ("The kernel was not built with CONFIG_QUOTA and CONFIG_QFMT_V2"), and then the root's ext4 is made without
  // those features. Either way it is mounted without prjquota: create must choose the image, and the limit hold.
  const featureRefused = await cannotMountQuotaFeature();
  const fs = ownFilesystem('256M', featureRefused === null ? ['-O', 'quota,project'] : [], 'loop');
  const track = (name: string) => {
    quotaCleanup.add(() => removeLxcContainer(name));
    return name;
  };
  quota.before(() => fs.mount());

  const made = featureRefused === null ? 'made with -O quota,project' : 'made without quota features (this kernel refuses -O quota,project read/write even without prjquota)';
  quota(`this kernel cannot enforce project quota (${quotaReason}, mount -o prjquota refused): on a root of its own ext4, ${made}, mounted without prjquota, create --disk chooses the image, and a writer inside gets ENOSPC at the limit`, async () => {
    const name = track(uniqueName('qk'));
    const dry = await thinLxc(['create', name, '--base', quotaBase, '--root', fs.root, '--disk', '32M', '--dry-run']);
    assert.match(dry.stdout, `# Disk limit: ${32 * 2 ** 20} bytes, a sparse ext4 image ${join(fs.root, name)}/disk.img`);
    const created = await thinLxc(['create', name, '--base', quotaBase, '--root', fs.root, '--disk', '32M']);
    assert.is(created.exitCode, 0, created.stderr);
    const state = readState(join(fs.root, name));
    assert.equal([state.disk, state.diskMode, state.diskProject, state.diskMount], [String(32 * 2 ** 20), 'image', null, null]);
    assert.ok(existsSync(join(fs.root, name, 'disk.img')));
    assert.is((await startContainer(name)).exitCode, 0);
    const filled = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=100']);
    assert.is.not(filled.exitCode, 0);
    assert.match(filled.stderr, 'No space left on device');
    const written = Number(await attach(name, 'wc -c < /big'));
    assert.ok(written > 16 * 2 ** 20 && written <= 32 * 2 ** 20, `wrote ${written} bytes before ENOSPC`);
    await must('lxc-stop', ['-n', name]);
  });
} else if (quotaRunnable) {
  skipUnless(quota, '--disk on a filesystem with project quota', false, quotaReason ?? '');
}

quota.run();

/** Why this kernel cannot mount ext4 with project quota (tried in a private namespace), or null when it can. */
async function cannotMountProjectQuota(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'not running as root';
  const work = mkdtempSync('/tmp/thin-lxc-quota-probe-');
  try {
    await must('truncate', ['-s', '64M', join(work, 'probe.img')]);
    await must('mkfs.ext4', ['-q', '-O', 'quota,project', join(work, 'probe.img')]);
    mkdirSync(join(work, 'm'));
    const tried = await sh('unshare', ['--mount', '--propagation', 'private', '--', 'mount', '-o', 'loop,prjquota', join(work, 'probe.img'), join(work, 'm')]);
    if (tried.exitCode === 0) return null;
    const config = await sh('sh', ['-c', 'zcat /proc/config.gz 2>/dev/null | grep -E "^# CONFIG_QFMT_V2 is not set|^# CONFIG_QUOTA is not set"']);
    return config.stdout.trim() === '' ? `mount -o prjquota failed: ${tried.stderr.trim()}` : `this kernel was built without project quota for ext4 (${config.stdout.trim().replace(/\n/g, ', ')})`;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Why this kernel refuses to mount an ext4 made with -O quota,project read/write even without prjquota, or null when it mounts one. */
async function cannotMountQuotaFeature(): Promise<string | null> {
  const work = mkdtempSync('/tmp/thin-lxc-quota-probe-');
  try {
    await must('truncate', ['-s', '64M', join(work, 'probe.img')]);
    await must('mkfs.ext4', ['-q', '-O', 'quota,project', join(work, 'probe.img')]);
    mkdirSync(join(work, 'm'));
    const tried = await sh('unshare', ['--mount', '--propagation', 'private', '--', 'mount', '-o', 'loop', join(work, 'probe.img'), join(work, 'm')]);
    return tried.exitCode === 0 ? null : tried.stderr.trim();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
