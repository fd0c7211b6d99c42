// From the race review r4: an update --disk killed mid-grow leaves its e2fsck and resize2fs to finish (they hold the
// container's lock, in a session of their own), so the image's file and filesystem end bigger than the state says.
// The next update --disk with a size between the two must not shrink the file under the filesystem.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { readState } from '../../src/state/state.js';
import { containerSuite, must, removeLxcContainer, sh, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually } from '../helpers/locks.js';
import { CLI } from '../helpers/paths.js';

const { tests, runnable, cleanup, base, root } = await containerSuite('update --disk after an update killed mid-grow', 'r4gbase');

/** Bytes the filesystem in `image` holds, from its superblock. */
async function filesystemBytes(image: string): Promise<number> {
  const superblock = await must('dumpe2fs', ['-h', image]);
  return Number(/^Block count:\s+(\d+)$/m.exec(superblock)?.[1]) * Number(/^Block size:\s+(\d+)$/m.exec(superblock)?.[1]);
}


/**
 * Starts `update NAME --disk 1G` with its resize2fs held on a fifo (a wrapper first on its PATH, which then runs the
 * real one, what it says in `out`), and kills update there (kill -9, a supervisor): a grow cut short, whose
 * resize2fs goes on alone once released.
 */
async function killMidGrow(name: string): Promise<{ release(): Promise<unknown>; out: string }> {
  const real = (await must('sh', ['-c', 'PATH=/usr/sbin:/sbin:$PATH command -v resize2fs'])).trim();
  const wrappers = mkdtempSync('/tmp/thin-lxc-killgrow-');
  cleanup.add(() => rmSync(wrappers, { recursive: true, force: true }));
  await must('mkfifo', [join(wrappers, 'go')]);
  writeFileSync(join(wrappers, 'resize2fs'), `#!/bin/sh\ntouch ${wrappers}/reached\ntimeout 120 cat ${wrappers}/go >/dev/null\n${real} "$@" > ${wrappers}/out 2>&1; echo "exit $?" >> ${wrappers}/out\n`, { mode: 0o755 });
  const release = () => sh('timeout', ['10', 'sh', '-c', `echo go > ${join(wrappers, 'go')}`]);
  cleanup.add(release);
  const update = execa(process.execPath, [CLI, 'update', name, '--root', root, '--disk', '1G'], { reject: false, timeout: 180_000, env: { PATH: `${wrappers}:${process.env.PATH}` } });
  assert.ok(await eventually(() => existsSync(join(wrappers, 'reached')), 30_000), 'update runs resize2fs on the image');
  process.kill(update.pid!, 'SIGKILL');
  await update;
  return { release, out: join(wrappers, 'out') };
}

if (runnable) {
  tests('update --disk 128M after an update --disk 1G killed mid-grow (its resize2fs finished) keeps the files written since', async () => {
    const name = uniqueName('r4grow');
    cleanup.add(() => removeLxcContainer(name));
    const dir = join(root, name);
    const image = join(dir, 'disk.img');
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M']);
    assert.is(created.exitCode, 0, created.stderr);
    // resize2fs, as update runs it from its PATH, waits on a fifo: update is killed meanwhile (kill -9, a supervisor).
    const grow = await killMidGrow(name);
    await grow.release();
    // The orphaned e2fsck and resize2fs finish the grow, holding the container's lock; the start waits for them.
    const first = await startContainer(name);
    console.log('resize2fs:', readFileSync(grow.out, 'utf8'));
    assert.is(first.exitCode, 0, first.stderr);
    assert.is(await filesystemBytes(image), 2 ** 30, 'the orphaned resize2fs grew the filesystem to the 1G file');
    // 24 files of 10M: most of them land beyond the first 128M of the filesystem.
    await must('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'mkdir -p /root/data && for i in $(seq 1 24); do dd if=/dev/urandom of=/root/data/f$i bs=1M count=10 2>/dev/null; done; sync'], 180_000);
    const before = await must('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'cd /root/data && md5sum f*']);
    await must('lxc-stop', ['-n', name]);
    console.log('state disk:', readState(dir).disk, 'filesystem bytes:', await filesystemBytes(image));
    const again = await thinLxc(['update', name, '--root', root, '--disk', '128M']);
    console.log('update --disk 128M:', again.exitCode, again.stdout.trim(), again.stderr.trim());
    assert.is(again.exitCode, 2, 'update refuses to cut the image');
    assert.match(again.stderr.trim(), new RegExp(`^thin-lxc: ${name}'s disk image is already ${2 ** 30} bytes, more than the ${128 * 2 ** 20} asked \\(an earlier grow was cut short\\): nothing was changed; update it to ${2 ** 30} bytes or more, which records its size \\(an image never shrinks\\)$`));
    const check = await sh('e2fsck', ['-fn', image]);
    const lastLines = check.stdout.split('\n').filter((line) => line.trim() !== '').slice(-3).join(' | ');
    console.log('e2fsck -fn:', check.exitCode, lastLines);
    const started = await startContainer(name);
    const after = started.exitCode === 0 ? (await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'cd /root/data && md5sum f*'])).stdout : `not started: ${started.stderr}`;
    if (started.exitCode === 0) await must('lxc-stop', ['-n', name]);
    assert.is(check.exitCode, 0, `the image has errors after update --disk 128M: ${lastLines}`);
    assert.is(after, before, 'the files written since the killed update are intact');
  });
}

if (runnable) {
  tests('commit after an update --mount killed between renaming its config and its state: the image carries no bind mount of the host folder', async () => {
    const name = uniqueName('r4cmnt');
    const image = uniqueName('r4cimg');
    cleanup.add(() => removeLxcContainer(name));
    cleanup.add(() => removeLxcContainer(image));
    const shared = mkdtempSync('/tmp/thin-lxc-r4shared-');
    cleanup.add(() => rmSync(shared, { recursive: true, force: true }));
    const created = await thinLxc(['create', name, '--base', base, '--root', root]);
    assert.is(created.exitCode, 0, created.stderr);
    // update's second rename(2) (its state, after its config) is where it is killed.
    const killed = await sh('strace', ['-f', '-o', '/dev/null', '-e', 'trace=rename,renameat,renameat2', '-e', 'inject=rename,renameat,renameat2:error=EIO:signal=SIGKILL:when=2', process.execPath, CLI, 'update', name, '--root', root, '--mount', `${shared}:/srv/shared`]);
    assert.is.not(killed.exitCode, 0, 'update was killed');
    assert.ok(readFileSync(join(root, name, 'image', 'config'), 'utf8').includes(shared), 'the config was renamed into place: it binds the folder');
    assert.equal(readState(join(root, name)).mounts, [], 'the state was not');
    const first = await thinLxc(['commit', name, image, '--root', root]);
    assert.is(first.exitCode, 2, first.stderr);
    assert.is(first.stderr.trim(), `thin-lxc: ${name}'s last update was cut short and has just been finished: nothing was copied; run the same commit again`);
    assert.equal(readState(join(root, name)).mounts, [`${shared}:/srv/shared`], 'the killed update was finished: its state says what its config does');
    const committed = await thinLxc(['commit', name, image, '--root', root]);
    assert.is(committed.exitCode, 0, committed.stderr);
    const config = readFileSync(join('/var/lib/lxc', image, 'config'), 'utf8');
    assert.not.ok(config.includes(shared), `the image binds the host folder ${shared} into every container made from it: ${config.split('\n').filter((line) => line.includes(shared)).join(' | ')}`);
  });
}

if (runnable) {
  tests('update killed between its renames, its pid then taken by another process: the next update still leaves a config that says what the state says', async () => {
    const name = uniqueName('r4pid');
    cleanup.add(() => removeLxcContainer(name));
    const dir = join(root, name);
    const config = join(dir, 'image', 'config');
    const created = await thinLxc(['create', name, '--base', base, '--root', root]);
    assert.is(created.exitCode, 0, created.stderr);
    const memoryLines = () => readFileSync(config, 'utf8').split('\n').filter((line) => /^lxc\.cgroup2?\.memory\./.test(line));
    const killed = await sh('strace', ['-f', '-o', '/dev/null', '-e', 'trace=rename,renameat,renameat2', '-e', 'inject=rename,renameat,renameat2:error=EIO:signal=SIGKILL:when=2', process.execPath, CLI, 'update', name, '--root', root, '--memory', '256M']);
    assert.is.not(killed.exitCode, 0, 'update was killed');
    const staged = readdirSync(dir).find((entry) => entry.startsWith('.thin-lxc.ini.update-'));
    assert.ok(staged, 'its state is still staged');
    const pid = Number(staged!.slice('.thin-lxc.ini.update-'.length));
    // Its pid goes to another process (a reboot, or pid_max wrapping on a busy host): forced through ns_last_pid.
    let other: ReturnType<typeof execa> | undefined;
    for (let attempt = 0; attempt < 5 && other?.pid !== pid; attempt++) {
      other?.kill();
      writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
      other = execa('sleep', ['120'], { reject: false });
    }
    cleanup.add(() => void other?.kill());
    assert.is(other!.pid, pid, 'another process has the killed update\'s pid');
    const lifted = await thinLxc(['update', name, '--root', root, '--memory', 'none']);
    other!.kill();
    console.log('update --memory none:', lifted.exitCode, lifted.stdout.trim(), '| config:', memoryLines(), '| state memory:', readState(dir).memory);
    assert.is(lifted.exitCode, 0, lifted.stderr);
    assert.equal(memoryLines(), [], `the state says no memory limit, and the config still limits ${name} (update said: ${lifted.stdout.trim()})`);
  });
}

if (runnable) {
  tests('destroy --force while a killed update\'s resize2fs still grows the image: refused in one line naming the gone holder, then done once it ends', async () => {
    const name = uniqueName('r4gdes');
    cleanup.add(() => removeLxcContainer(name));
    const dir = join(root, name);
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M']);
    assert.is(created.exitCode, 0, created.stderr);
    const grow = await killMidGrow(name);
    const refused = await thinLxc(['destroy', name, '--root', root, '--force']);
    await grow.release();
    console.log('destroy --force meanwhile:', refused.exitCode, refused.stderr.trim());
    assert.ok(existsSync(join(dir, 'disk.img')), 'nothing was removed while resize2fs ran');
    assert.is.not(refused.exitCode, 0, 'destroy waited and gave up');
    assert.match(refused.stderr.trim(), /^thin-lxc: [^\n]*is gone: a tool it started may still be at work[^\n]*$/);
    assert.ok(await eventually(async () => (await sh('pgrep', ['-f', `resize2fs ${join(dir, 'disk.img')}`])).exitCode !== 0, 60_000), 'resize2fs finished');
    const destroyed = await thinLxc(['destroy', name, '--root', root, '--force']);
    assert.is(destroyed.exitCode, 0, destroyed.stderr);
    assert.not.ok(existsSync(dir), 'destroyed once resize2fs was done');
  });
}

tests.run();
