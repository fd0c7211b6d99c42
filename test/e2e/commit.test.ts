// End to end for thin-lxc commit: a stopped thin container's merged view becomes a standalone LXC container
// (owners, modes, hard links, device nodes, sparse files, xattrs and deletions intact) that lxc-start boots
// and that thin containers stack on.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerLockName } from '../../src/core/lock.js';
import { attach, containerSuite, hostMountsMentioning, must, removeLxcContainer, sh, startContainer, thinLxc, uniqueName, type Ran } from '../helpers/host.js';
import { eventually, holdLock, waiterOf } from '../helpers/locks.js';
import { CLI } from '../helpers/paths.js';
import { processesMentioning } from '../helpers/processes.js';

const { tests: commits, runnable, cleanup, base, root } = await containerSuite('thin-lxc commit with real LXC', 'mbase');

/** A thin-lxc command run in the background: its pid (to kill it, or see what it waits for) and its outcome. */
function launch(args: readonly string[]): { pid: number; done: Promise<Ran> } {
  const child = execa(process.execPath, [CLI, ...args], { reject: false, timeout: 120_000, stdin: 'ignore' });
  const done = child.then((result) => ({ exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) }));
  return { pid: child.pid!, done };
}

/** The apparent size of what is under a directory (not its blocks, which the filesystem allocates later). */
async function bytesUnder(dir: string): Promise<number> {
  return Number((await must('du', ['-s', '--bytes', dir])).split('\t')[0]);
}

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
    // mknod c 1 3 inside: major 1, minor 3 (Linux's rdev is major << 8 | minor for small numbers), as made, not as the host's /dev/null is now.
    assert.is(device.rdev, (1 << 8) | 3, 'the device keeps its numbers');
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

if (runnable) {
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  /** A stopped thin container with a big file in its write layer, so that its commit copies for a while. */
  const bigContainer = async (label: string, ...extra: string[]) => {
    const thin = track(uniqueName(label));
    assert.is((await thinLxc(['create', thin, '--base', base, '--root', root, ...extra])).exitCode, 0);
    await must('dd', ['if=/dev/urandom', `of=${join(root, thin, 'wlayer/big')}`, 'bs=1M', 'count=300', 'status=none'], 120_000);
    return thin;
  };
  /**
   * Stops the rsync processes of a commit into `image` once they copy (SIGSTOP, so that the copy is held half
   * way), and returns them; the cleanup kills whichever of them is still there.
   */
  const holdCopy = async (image: string) => {
    const target = `/var/lib/lxc/${image}/rootfs/`;
    const rsyncs = () => processesMentioning(target).filter((found) => found.program.endsWith('rsync'));
    assert.ok(await eventually(() => rsyncs().length > 0, 60_000), 'rsync started copying');
    const held = rsyncs().map((found) => found.pid);
    for (const pid of held) process.kill(pid, 'SIGSTOP');
    cleanup.add(() => {
      for (const found of processesMentioning(target)) process.kill(found.pid, 'SIGKILL');
    });
    return { target, held };
  };

  commits('a commit killed with SIGKILL takes its copy with it; the same commit again removes what it left and works', async () => {
    const thin = await bigContainer('kil');
    const image = track(uniqueName('kim'));
    const commit = launch(['commit', thin, image, '--root', root]);
    const { target } = await holdCopy(image);
    process.kill(commit.pid, 'SIGKILL');
    await commit.done;
    // Held still, the copy cannot finish on its own meanwhile: only dying with its commit ends it.
    const gone = await eventually(() => processesMentioning(target).length === 0, 10_000);
    assert.ok(gone, `no process of the killed commit is left: ${JSON.stringify(processesMentioning(target))}`);
    const size = await bytesUnder(join('/var/lib/lxc', image));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.is(await bytesUnder(join('/var/lib/lxc', image)), size, 'nothing writes into the new container any more');
    assert.not.ok(existsSync(join('/var/lib/lxc', image, 'config')), 'the interrupted copy is no container');

    const again = await thinLxc(['commit', thin, image, '--root', root]);
    assert.is(again.exitCode, 0, again.stderr);
    assert.match(again.stdout, `Committed ${thin} to LXC container ${image}`);
    assert.is(statSync(join('/var/lib/lxc', image, 'rootfs/big')).size, 300 * 2 ** 20, 'the copy is whole');
    assert.equal(readdirSync(join('/var/lib/lxc', image)).sort(), ['config', 'rootfs'], 'no marker of an unfinished commit is left');
    assert.is((await startContainer(image)).exitCode, 0, 'lxc-start boots it');
    await must('lxc-stop', ['-n', image, '-k']);
    assert.is((await thinLxc(['destroy', thin, '--root', root])).exitCode, 0);
  });

  commits("a directory thin-lxc did not make is never taken for an interrupted commit's", async () => {
    const thin = track(uniqueName('own'));
    const other = track(uniqueName('oth'));
    assert.is((await thinLxc(['create', thin, '--base', base, '--root', root])).exitCode, 0);
    mkdirSync(join('/var/lib/lxc', other, 'rootfs'), { recursive: true });
    writeFileSync(join('/var/lib/lxc', other, 'rootfs/keep'), 'data\n');
    const refused = await thinLxc(['commit', thin, other, '--root', root]);
    assert.is(refused.exitCode, 2);
    assert.is(refused.stderr.trim(), `thin-lxc: name "${other}" is already used by a container: choose another name for the new base`);
    assert.is(readFileSync(join('/var/lib/lxc', other, 'rootfs/keep'), 'utf8'), 'data\n', 'the directory is untouched');
    assert.is((await thinLxc(['destroy', thin, '--root', root])).exitCode, 0);
  });

  commits('a start during a commit is refused at once, saying why, its post-stop hooks wait for nothing, and the commit completes', async () => {
    // Publishing a port gives the failed start a post-stop hook (ports-down) that would wait for the lock.
    const thin = await bigContainer('hld', '-p', `${49_500 + Math.floor(Math.random() * 5_000)}:80`);
    const image = track(uniqueName('him'));
    const commit = launch(['commit', thin, image, '--root', root]);
    const { held } = await holdCopy(image);
    let started: Ran;
    let startMs: number;
    try {
      const before = Date.now();
      started = await sh('lxc-start', ['-n', thin, '-d']);
      // lxc-start -d returns once LXC reports STOPPED, before the post-stop hooks: its monitor runs them, then exits.
      const monitor = `[lxc monitor] /var/lib/lxc ${thin}`;
      const busy = () => processesMentioning(monitor).length > 0 || processesMentioning(join(root, thin)).some((found) => found.program.endsWith('node'));
      assert.ok(await eventually(() => !busy(), 60_000), "the failed start's monitor and hooks end");
      startMs = Date.now() - before;
      const log = existsSync(join(root, thin, 'hook.log')) ? readFileSync(join(root, thin, 'hook.log'), 'utf8') : '';
      assert.not.match(log, 'timed out', `no hook waited out the commit's lock: ${log}`);
    } finally {
      for (const pid of held) process.kill(pid, 'SIGCONT');
    }
    assert.is.not(started.exitCode, 0, 'the start is refused while the commit copies');
    const log = existsSync(join(root, thin, 'hook.log')) ? readFileSync(join(root, thin, 'hook.log'), 'utf8') : '';
    assert.match(log, `${thin} is being committed to ${image} by pid ${commit.pid}: wait for it or stop it (lxc.hook.pre-mount of ${thin})`);
    // Generous: waiting out the lock takes 20 s.
    assert.ok(startMs < 15_000, `the refused start and its hooks ended in ${startMs} ms`);
    const committed = await commit.done;
    assert.is(committed.exitCode, 0, committed.stderr);
    assert.is(statSync(join('/var/lib/lxc', image, 'rootfs/big')).size, 300 * 2 ** 20, 'the copy is whole');
    assert.is((await startContainer(thin)).exitCode, 0, 'once the commit is done the container starts');
    await must('lxc-stop', ['-n', thin, '-k']);
    assert.is((await thinLxc(['destroy', thin, '--root', root])).exitCode, 0);
  });

  commits('a commit that waited for the container while a start took it refuses, and copies nothing', async () => {
    const thin = track(uniqueName('wai'));
    const image = track(uniqueName('wim'));
    assert.is((await thinLxc(['create', thin, '--base', base, '--root', root])).exitCode, 0);
    const lock = containerLockName(join(root, thin));
    const holder = await holdLock(lock);
    let commit: ReturnType<typeof launch> | undefined;
    let starting: Promise<Ran> | undefined;
    try {
      commit = launch(['commit', thin, image, '--root', root]);
      const commitWaits = await eventually(() => waiterOf(lock, commit!.pid) !== undefined);
      assert.ok(commitWaits, "the commit waits for the container's lock");
      // The commit's wait is held still, so that the start's pre-mount hook takes the lock first.
      const waiter = waiterOf(lock, commit.pid)!;
      process.kill(waiter, 'SIGSTOP');
      try {
        starting = sh('lxc-start', ['-n', thin, '-d']);
        assert.ok(await eventually(() => waiterOf(lock, join(root, thin)) !== undefined), "the start's hook waits for the container's lock");
        await holder.release();
        assert.is((await starting).exitCode, 0, 'the start took the lock first, and ran');
      } finally {
        process.kill(waiter, 'SIGCONT');
      }
    } finally {
      await holder.release();
      await starting;
    }
    const committed = await commit.done;
    assert.is(committed.exitCode, 2);
    assert.is(committed.stderr.trim(), `thin-lxc: ${thin} was started while commit waited: stop it (lxc-stop -n ${thin}), then commit again`);
    assert.not.ok(existsSync(join('/var/lib/lxc', image)), 'nothing was copied');
    await must('lxc-stop', ['-n', thin, '-k']);
    assert.is((await thinLxc(['destroy', thin, '--root', root])).exitCode, 0);
  });

  commits('a commit that waited for the container while it was replaced refuses, and copies nothing', async () => {
    const thin = track(uniqueName('rep'));
    const image = track(uniqueName('rim'));
    assert.is((await thinLxc(['create', thin, '--base', base, '--root', root])).exitCode, 0);
    const lock = containerLockName(join(root, thin));
    const holder = await holdLock(lock);
    let commit: ReturnType<typeof launch> | undefined;
    let replacing: ReturnType<typeof launch> | undefined;
    try {
      commit = launch(['commit', thin, image, '--root', root]);
      assert.ok(await eventually(() => waiterOf(lock, commit!.pid) !== undefined), "the commit waits for the container's lock");
      // The commit's wait is held still, so that the replace takes the lock first.
      const waiter = waiterOf(lock, commit.pid)!;
      process.kill(waiter, 'SIGSTOP');
      try {
        replacing = launch(['create', thin, '--base', base, '--root', root, '--memory', '256M', '--replace']);
        assert.ok(await eventually(() => waiterOf(lock, replacing!.pid) !== undefined), "the replace waits for the container's lock");
        await holder.release();
        const replaced = await replacing.done;
        assert.is(replaced.exitCode, 0, replaced.stderr);
      } finally {
        process.kill(waiter, 'SIGCONT');
      }
    } finally {
      await holder.release();
      await replacing?.done;
    }
    const committed = await commit.done;
    assert.is(committed.stderr.trim(), `thin-lxc: ${thin} changed while commit waited for it: run the same commit again`);
    assert.is(committed.exitCode, 2);
    assert.not.ok(existsSync(join('/var/lib/lxc', image)), 'nothing was copied');
    assert.is((await thinLxc(['destroy', thin, '--root', root])).exitCode, 0);
  });
}

commits.run();
