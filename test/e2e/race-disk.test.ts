// --disk images under races: a diff reading a container's image (it holds it mounted in a namespace of its own),
// a stop whose post-stop hook has not finished, against a start, update --disk and commit (first written by the
// race review). The diff is held mid-read deterministically: once its holder process (the
// `sh` that mounts the image and waits on its stdin) exists, the diff's own node process is stopped with SIGSTOP,
// so the holder keeps the image mounted exactly as a diff of a large write layer would while it walks it.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { readState } from '../../src/state/state.js';
import { containerSuite, must, removeLxcContainer, sh, startContainer, thinLxc, uniqueName, type Ran } from '../helpers/host.js';
import { containerLockName, lockHolder } from '../../src/core/lock.js';
import { holdImageReadOnly, loopsOf } from '../helpers/images.js';
import { eventually, holdLock, waitingFor } from '../helpers/locks.js';
import { CLI } from '../helpers/paths.js';

const { tests: races, runnable, cleanup, base, root } = await containerSuite('--disk images under concurrent diff, start, stop and update', 'rdbase');

function launch(args: readonly string[], file: string = process.execPath): { pid: number; done: Promise<Ran>; exited: () => boolean } {
  const child = execa(file, file === process.execPath ? [CLI, ...args] : args, { reject: false, timeout: 120_000, stdin: 'ignore' });
  let exited = false;
  const done = child.then((result) => {
    exited = true;
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
  });
  return { pid: child.pid!, done, exited: () => exited };
}

/** Lets `other` run until it is done or waits for the container's lock (a diff that serialises holds it), bounded. */
async function doneOrWaiting(other: { exited: () => boolean }, dir: string): Promise<void> {
  await eventually(() => other.exited() || waitingFor(containerLockName(dir)).length > 0, 30_000);
}

/** The pid of diff's holder: the `sh -c 'mount ...; read _; umount'` whose mount point is `diskDir`. */
function holderOf(diskDir: string): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0] === 'sh' && argv[1] === '-c' && argv[2]?.includes('read _') && argv.includes(diskDir)) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return null;
}

function mountedIn(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').some((line) => line.split(' ')[4] === dir);
  } catch {
    return false;
  }
}


/** Starts `thin-lxc diff NAME` and stops it (SIGSTOP) once its holder exists and has the image mounted. */
async function heldDiff(name: string, dir: string, options: { walking?: boolean } = {}): Promise<{ resume(): Promise<Ran> }> {
  // A diff caught after it let its holder go (its walk already done: a loaded host schedules the test late) holds
  // nothing: caught again, a bounded number of times.
  for (let attempt = 1; ; attempt++) {
    const diff = launch(['diff', name, '--root', root]);
    let holder: number | null = null;
    // With `walking`, once diff let go of the container's lock and walks the image it holds (a running one's).
    const walking = () => !options.walking || (holder !== null && mountedIn(holder, join(dir, 'disk')) && lockHolder(containerLockName(dir))?.pid !== diff.pid);
    // Polled without pause: the write layer's many files keep diff walking (the holder up) for a while.
    const deadline = Date.now() + 20_000;
    while (((holder = holderOf(join(dir, 'disk'))) === null || !walking()) && !diff.exited() && Date.now() < deadline);
    assert.ok(holder !== null, 'diff started its holder');
    process.kill(diff.pid, 'SIGSTOP');
    // Still waiting for diff's word, which a stopped diff cannot give: the image stays held until resume().
    if (await eventually(() => mountedIn(holder!, join(dir, 'disk')) && waitsForInput(holder!), 5_000)) return heldBy(diff);
    process.kill(diff.pid, 'SIGCONT');
    await diff.done;
    assert.ok(attempt < 3, `diff let its holder go before it could be stopped, ${attempt} times`);
  }
}

/** Whether `pid` sleeps reading its standard input (a socket, as Node gives a child): a holder diff has not let go. */
function waitsForInput(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'S' && readFileSync(`/proc/${pid}/wchan`, 'utf8') === 'unix_stream_read_generic';
  } catch {
    return false;
  }
}

function heldBy(diff: ReturnType<typeof launch>): { resume(): Promise<Ran> } {
  let resumed = false;
  const resume = async () => {
    if (!resumed) process.kill(diff.pid, 'SIGCONT');
    resumed = true;
    return diff.done;
  };
  cleanup.add(async () => void (await resume()));
  return { resume };
}

/** Starts the container (if stopped) and gives its write layer 12000 files, which diff takes a while to walk. */
async function manyFiles(name: string): Promise<void> {
  if ((await sh('lxc-info', ['-s', '-H', '-n', name])).stdout.trim() !== 'RUNNING') assert.is((await startContainer(name)).exitCode, 0);
  const made = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'mkdir -p /root/many && cd /root/many && seq 1 12000 | xargs touch && ls | wc -l'], 120_000);
  assert.is(made.stdout.trim(), '12000', made.stderr);
}

if (runnable) {
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };

  races('a start while a diff reads the stopped container\'s image waits for the diff and gets a writable write layer', async () => {
    const name = track(uniqueName('dstart'));
    const dir = join(root, name);
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M'])).exitCode, 0);
    await manyFiles(name);
    await must('lxc-stop', ['-n', name]);
    const diff = await heldDiff(name, dir);
    console.log('loops on the image while diff holds it:', loopsOf(join(dir, 'disk.img')).map((d) => `${d} ro=${readFileSync(`/sys/block/${d}/ro`, 'utf8').trim()}`));
    const start = launch(['-n', name, '-d'], 'lxc-start');
    await doneOrWaiting(start, dir);
    const resumed = diff.resume();
    const started = await start.done;
    const wrote = started.exitCode === 0 ? await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'echo kept > /root/kept && cat /root/kept']) : null;
    const done = await resumed;
    assert.is(done.exitCode, 0, done.stderr);
    assert.is(started.exitCode, 0, `lxc-start: ${started.stderr}`);
    assert.is(wrote?.stdout.trim(), 'kept', `writing inside: ${wrote?.stderr}`);
    await must('lxc-stop', ['-n', name]);
  });

  races('update --disk refuses in one line to grow an image whose filesystem a diff still holds after the container stopped: the image stays clean', async () => {
    const name = track(uniqueName('dgrow'));
    const dir = join(root, name);
    const image = join(dir, 'disk.img');
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M'])).exitCode, 0);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is((await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'dd if=/dev/urandom of=/root/data bs=1M count=8 2>/dev/null && sync'])).exitCode, 0);
    await manyFiles(name);
    const diff = await heldDiff(name, dir, { walking: true });
    await must('lxc-stop', ['-n', name]);
    console.log('loops on the image after the stop:', loopsOf(image));
    const update = launch(['update', name, '--root', root, '--disk', '128M']);
    await doneOrWaiting(update, dir);
    const done = await diff.resume();
    const grown = await update.done;
    console.log('update:', grown.exitCode, grown.stdout.trim(), grown.stderr.trim());
    assert.is(done.exitCode, 0, done.stderr);
    assert.is(grown.exitCode, 2, `update refused while the diff held the image: ${grown.stdout}`);
    assert.match(grown.stderr.trim(), new RegExp(`^thin-lxc: ${name}'s disk image is still in use \\(/dev/loop\\d+[^\\n]*\\): nothing was changed; [^\\n]+$`));
    assert.is(readState(dir).disk, String(64 * 2 ** 20), 'the state is unchanged');
    assert.is(statSync(image).size, 64 * 2 ** 20, 'the file is unchanged');
    assert.ok(await eventually(() => loopsOf(image).length === 0, 10_000), 'the loop device goes once the diff is done');
    const check = await sh('e2fsck', ['-f', '-n', image]);
    const blocks = /^Block count:\s+(\d+)$/m.exec(await must('dumpe2fs', ['-h', image]))?.[1];
    console.log('after:', check.exitCode, check.stdout.split('\n').slice(0, 12).join(' | '), 'blocks', blocks);
    assert.is(check.exitCode, 0, `e2fsck -fn ${image}: ${check.stdout}`);
    if (grown.exitCode === 0) assert.is(Number(blocks) * 1024 >= 128 * 2 ** 20 || Number(blocks) * 4096 >= 128 * 2 ** 20, true, `the filesystem has its new size (${blocks} blocks)`);
  });

  races('update --disk and commit refuse in one line while an unprivileged container that stopped by itself still has its image mounted in its monitor (post-stop held); update grows it once the hook is done', async () => {
    const name = track(uniqueName('upost'));
    const dir = join(root, name);
    const image = join(dir, 'disk.img');
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--unprivileged', '--disk', '64M']);
    assert.is(created.exitCode, 0, created.stderr);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is((await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'dd if=/dev/urandom of=/root/data bs=1M count=8 2>/dev/null && sync'])).exitCode, 0);
    // Its post-stop hook is held: first at the container's lock, then stopped (SIGSTOP, with its flock(1)) once it
    // waits there, as a hook still starting up is; then the lock is let go.
    const lock = await holdLock(containerLockName(dir));
    let held: number[] = [];
    try {
      // The attached shell may itself be ended by the shutdown (143): either is a poweroff from inside.
      assert.ok([0, 143].includes((await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'kill -USR2 1'])).exitCode), 'poweroff from inside');
      assert.ok(await eventually(() => waitingFor(containerLockName(dir)).length > 0, 30_000), 'its post-stop hook waits for the lock');
      const hook = waitingFor(containerLockName(dir))[0]!;
      const flocks = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).filter((entry) => {
        try {
          const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === hook;
        } catch {
          return false;
        }
      });
      held = [hook, ...flocks.map(Number)];
      for (const pid of held) process.kill(pid, 'SIGSTOP');
      cleanup.add(() => held.forEach((pid) => { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } }));
    } finally {
      await lock.release();
    }
    console.log('state:', (await sh('lxc-info', ['-s', '-H', '-n', name])).stdout.trim(), 'loops:', loopsOf(image));
    const update = launch(['update', name, '--root', root, '--disk', '128M']);
    // Done: nothing holds the container's lock now (the held hook waits for it), and update waits at most 20 s for it.
    assert.ok(await eventually(() => update.exited(), 30_000), 'update is done while the post-stop hook is held');
    // Still mounted in the monitor (its hook is held) when update is done.
    const mountedWhenDone = loopsOf(image);
    const copy = uniqueName('upostc');
    cleanup.add(() => removeLxcContainer(copy));
    const committed = update.exited() ? await thinLxc(['commit', name, copy, '--root', root]) : null;
    for (const pid of held) process.kill(pid, 'SIGCONT');
    const grown = await update.done;
    console.log('update:', grown.exitCode, grown.stdout.trim(), grown.stderr.trim());
    assert.equal(grown.exitCode === 0 ? mountedWhenDone : [], [], 'update grew the image while its ext4 was still mounted (loop device attached) in the stopped container\'s monitor');
    assert.is(grown.exitCode, 2);
    assert.match(grown.stderr.trim(), new RegExp(`^thin-lxc: ${name}'s disk image is still in use \\(/dev/loop\\d+[^\\n]*\\): nothing was changed; [^\\n]+$`));
    assert.is(readState(dir).disk, String(64 * 2 ** 20), 'the refused update changed nothing in the state');
    assert.is(statSync(image).size, 64 * 2 ** 20, 'the refused update left the file as it was');
    assert.ok(committed !== null, 'commit ran in the window');
    assert.is(committed!.exitCode, 2, committed!.stderr);
    assert.match(committed!.stderr.trim(), new RegExp(`^thin-lxc: ${name}'s disk image is still in use \\(/dev/loop\\d+[^\\n]*\\): [^\\n]+$`), 'commit refuses in one line');
    assert.ok(await eventually(() => loopsOf(image).length === 0, 15_000), 'the loop device goes once its post-stop hook is done');
    const again = await thinLxc(['update', name, '--root', root, '--disk', '128M']);
    assert.is(again.exitCode, 0, again.stderr);
    const check = await sh('e2fsck', ['-f', '-n', image]);
    const blocks = Number(/^Block count:\s+(\d+)$/m.exec(await must('dumpe2fs', ['-h', image]))?.[1]);
    const blockSize = Number(/^Block size:\s+(\d+)$/m.exec(await must('dumpe2fs', ['-h', image]))?.[1]);
    assert.is(check.exitCode, 0, `e2fsck -fn ${image}: ${check.stdout.split('\n').filter((line) => !/Illegal block/.test(line)).join('\n')}`);
    assert.is(blocks * blockSize, 128 * 2 ** 20, 'the filesystem has the size the state records');
  });
}

/** The children of `parent` whose program is `program` (by /proc/PID/stat's ppid and comm), with their state letter. */
function childrenOf(parent: number, program: string): { pid: number; state: string }[] {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).flatMap((entry) => {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(ppid) === parent && comm === program ? [{ pid: Number(entry), state: state! }] : [];
    } catch {
      return [];
    }
  });
}

if (runnable) {
  races('update --disk refuses to grow the image of a container that started while update was asking LXC whether it runs', async () => {
    const name = uniqueName('ustart');
    // lxc-ls asks every container in turn; one whose start is held in its mount hook (at its lock) keeps it waiting,
    // after it has seen `name` (listed first) stopped.
    const blocker = `${name}-zz`;
    for (const made of [name, blocker]) cleanup.add(() => removeLxcContainer(made));
    const dir = join(root, name);
    const image = join(dir, 'disk.img');
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M'])).exitCode, 0);
    assert.is((await thinLxc(['create', blocker, '--base', base, '--root', root])).exitCode, 0);
    const lock = await holdLock(containerLockName(join(root, blocker)));
    let update: ReturnType<typeof launch>;
    let blocked: ReturnType<typeof launch>;
    try {
      blocked = launch(['-n', blocker, '-d'], 'lxc-start');
      assert.ok(await eventually(() => waitingFor(containerLockName(join(root, blocker))).length > 0, 30_000), 'the blocker\'s mount hook waits');
      update = launch(['update', name, '--root', root, '--disk', '128M']);
      assert.ok(await eventually(() => childrenOf(update.pid, 'lxc-ls').length > 0 || update.exited(), 20_000), 'update asks lxc-ls');
      assert.is((await startContainer(name)).exitCode, 0);
    } finally {
      await lock.release();
    }
    const grown = await update.done;
    const mountedWhenDone = loopsOf(image);
    console.log('update:', grown.exitCode, grown.stdout.trim(), grown.stderr.trim(), 'loops:', mountedWhenDone);
    assert.is((await blocked.done).exitCode, 0);
    await must('lxc-stop', ['-n', name]);
    await must('lxc-stop', ['-n', blocker]);
    console.log('e2fsck after stop:', (await sh('e2fsck', ['-f', '-n', image])).exitCode);
    assert.equal(grown.exitCode === 0 ? mountedWhenDone : [], [], 'update grew the image of a running container (its loop device attached)');
    assert.is(grown.exitCode, 2, 'update refused');
    assert.is(readState(dir).disk, String(64 * 2 ** 20), 'the state is unchanged');
  });
}

if (runnable) {
  races('a start while another process holds the image on a read-only loop device is refused in one line naming it, and starts once it is let go', async () => {
    const name = uniqueName('rohold');
    cleanup.add(() => removeLxcContainer(name));
    const dir = join(root, name);
    const image = join(dir, 'disk.img');
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M'])).exitCode, 0);
    // A read-only mount of the image in a namespace of its own, as a reader outside thin-lxc (or by hand) makes one.
    const hold = await holdImageReadOnly(image, join(root, `${name}.hold`));
    cleanup.add(() => hold.release());
    const device = loopsOf(image)[0];
    assert.ok(device !== undefined && readFileSync(`/sys/block/${device}/ro`, 'utf8').trim() === '1', 'a read-only loop device holds the image');
    const refused = await sh('lxc-start', ['-n', name, '-d']);
    assert.is.not(refused.exitCode, 0, 'the start fails');
    const logged = readFileSync(join(dir, 'hook.log'), 'utf8').trim().split('\n').at(-1)!.replace(/^\S+ /, ''); // after its timestamp
    assert.is(
      logged,
      `thin-lxc: the disk image ${image} is open read-only (/dev/${device}, held by another process: a thin-lxc diff or commit reading it, or a mount of it elsewhere), so ${name} could not write to it: let it finish (losetup -j ${image} shows it), then start again (lxc.hook.pre-mount of ${name})`,
    );
    await hold.release();
    assert.ok(await eventually(() => loopsOf(image).length === 0, 10_000), 'the read-only loop device goes with its mount');
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is((await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'echo kept > /root/kept && cat /root/kept'])).stdout.trim(), 'kept');
    await must('lxc-stop', ['-n', name]);
  });
}

/** The e2fsprogs tools (e2fsck, resize2fs) working on `image` now, with their state letter. */
function toolsOn(image: string): { pid: number; state: string; program: string }[] {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).flatMap((entry) => {
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!/(^|\/)(e2fsck|resize2fs)$/.test(argv[0] ?? '') || !argv.includes(image)) return [];
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      return [{ pid: Number(entry), state: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!, program: argv[0]! }];
    } catch {
      return [];
    }
  });
}

/** How many read and write system calls the process made. */
function ioCounts(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/io`, 'utf8').split('\n').filter((line) => /^sysc[rw]:/.test(line)).join(' ');
  } catch {
    return 'gone';
  }
}

if (runnable) {
  // First written by the race review (r2): an update killed mid-grow let go of the container's lock while its
  // resize2fs went on, and a start mounted the image under it.
  /**
   * A stopped --disk 64M container with data, and `update --disk 1G` of it whose resize2fs, as update runs it from
   * its PATH, stopped itself (SIGSTOP injected by strace) at its first write to the image. With `group`, update
   * runs as the leader of a process group of its own, as a command typed in a terminal does.
   */
  async function pausedGrow(label: string, group = false) {
    const name = uniqueName(label);
    cleanup.add(() => removeLxcContainer(name));
    const dir = join(root, name);
    const image = join(dir, 'disk.img');
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M'])).exitCode, 0);
    assert.is((await startContainer(name)).exitCode, 0);
    await must('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'mkdir -p /root/data && for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=/root/data/f$i bs=64k count=16 2>/dev/null; done; sync']);
    await must('lxc-stop', ['-n', name]);
    const real = (await must('sh', ['-c', 'PATH=/usr/sbin:/sbin:$PATH command -v resize2fs'])).trim();
    const wrappers = mkdtempSync('/tmp/thin-lxc-gkill-');
    cleanup.add(() => rmSync(wrappers, { recursive: true, force: true }));
    writeFileSync(join(wrappers, 'resize2fs'), `#!/bin/sh\nexec strace -f -o /dev/null -e trace=pwrite64 -e inject=pwrite64:signal=SIGSTOP:when=1 ${real} "$@"\n`, { mode: 0o755 });
    const update = execa(process.execPath, [CLI, 'update', name, '--root', root, '--disk', '1G'], { reject: false, detached: group, env: { PATH: `${wrappers}:${process.env.PATH}` } });
    // Stopped for good, not in one of strace's stops at each system call: its system call counts stand still.
    const sample = () => toolsOn(image).filter((tool) => tool.program === real && tool.state === 't').map((tool) => `${tool.pid} ${ioCounts(tool.pid)}`);
    const paused = async () => {
      const first = sample();
      await new Promise((resolve) => setTimeout(resolve, 300));
      return first.find((entry) => sample().includes(entry));
    };
    let found: string | undefined;
    assert.ok(await eventually(async () => (found = await paused()) !== undefined, 60_000), `resize2fs stopped at its first write to the image (update: ${update.exitCode ?? 'running'})`);
    const tool = Number(found!.split(' ')[0]);
    cleanup.add(() => { try { process.kill(tool, 'SIGCONT'); } catch { /* gone */ } });
    return { name, dir, image, update, tool };
  }

  /** Bytes the filesystem in `image` holds, from its superblock. */
  async function filesystemBytes(image: string): Promise<number> {
    const superblock = await must('dumpe2fs', ['-h', image]);
    return Number(/^Block count:\s+(\d+)$/m.exec(superblock)?.[1]) * Number(/^Block size:\s+(\d+)$/m.exec(superblock)?.[1]);
  }

  races('update --disk killed while resize2fs grows the image: no start mounts the image until resize2fs is done, and the image stays clean', async () => {
    const { name, dir, image, update, tool } = await pausedGrow('gkill');
    // The update is killed (kill -9, a supervisor's stop): its resize2fs, a process of its own, goes on.
    process.kill(update.pid!, 'SIGKILL');
    await update;
    let startDone = false;
    const start = execa('lxc-start', ['-n', name, '-d'], { reject: false, timeout: 90_000 }).finally(() => (startDone = true));
    // The start either waits for the container's lock (its mount hook) or runs.
    await eventually(async () => waitingFor(containerLockName(dir)).length > 0 || (startDone && (await sh('lxc-info', ['-s', '-H', '-n', name])).stdout.trim() === 'RUNNING'), 30_000);
    const waited = waitingFor(containerLockName(dir)).length > 0;
    const mountedWhileGrowing = startDone && toolsOn(image).length > 0;
    console.log('start done:', startDone, 'start waits:', waited, 'tools on the image:', toolsOn(image).map((proc) => proc.program), 'loops:', loopsOf(image));
    process.kill(tool, 'SIGCONT');
    assert.ok(await eventually(() => toolsOn(image).length === 0, 60_000), 'resize2fs finished');
    const started = await start;
    if (started.exitCode === 0) {
      await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'dd if=/dev/urandom of=/root/data/g bs=64k count=64 2>/dev/null; sync']);
      await must('lxc-stop', ['-n', name]);
    }
    assert.ok(await eventually(() => loopsOf(image).length === 0, 20_000), 'the image is let go');
    const check = await sh('e2fsck', ['-fn', image]);
    const lastLines = check.stdout.split('\n').filter((line) => line.trim() !== '').slice(-4).join(' | ');
    console.log('e2fsck -fn:', check.exitCode, lastLines);
    assert.not.ok(mountedWhileGrowing, `lxc-start (exit ${started.exitCode}) mounted ${image} while the killed update's resize2fs was still growing it`);
    assert.ok(waited, 'the start\'s mount hook waited for the container\'s lock, which resize2fs still held');
    assert.is(started.exitCode, 0, `the start went on once resize2fs was done: ${started.stderr}`);
    assert.is(check.exitCode, 0, `the image has errors: ${lastLines}`);
    assert.is(await filesystemBytes(image), 2 ** 30, 'the orphaned resize2fs finished the grow: the filesystem fills the 1G file');
  });

  races('update --disk interrupted with Ctrl-C (SIGINT to its process group) while resize2fs grows the image: resize2fs is not interrupted, it finishes the grow, and the image stays clean', async () => {
    const { image, update, tool } = await pausedGrow('gint', true);
    process.kill(-update.pid!, 'SIGINT');
    const interrupted = await update;
    console.log('update after Ctrl-C:', interrupted.exitCode, interrupted.signal, 'tools on the image:', toolsOn(image).map((proc) => `${proc.program} ${proc.state}`));
    try {
      process.kill(tool, 'SIGCONT');
    } catch {
      // Gone already.
    }
    assert.ok(await eventually(() => toolsOn(image).length === 0, 60_000), 'resize2fs is done');
    const check = await sh('e2fsck', ['-fn', image]);
    const lastLines = check.stdout.split('\n').filter((line) => line.trim() !== '').slice(-4).join(' | ');
    const bytes = await filesystemBytes(image);
    console.log('e2fsck -fn:', check.exitCode, lastLines, 'filesystem bytes:', bytes);
    assert.is.not(interrupted.exitCode, 0, 'update itself was interrupted');
    assert.is(bytes, 2 ** 30, `resize2fs was interrupted with update: the filesystem holds ${bytes} bytes of the 1G file`);
    assert.is(check.exitCode, 0, `the image has errors: ${lastLines}`);
  });
}

if (runnable) {
  // First written by the race review (r2, findings 4, 5 and 2): update --disk's grow against other commands and a full host, a crashed image's journal.
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };

  races('a create while update --disk checks and grows another container\'s image (e2fsck held) is not refused', async () => {
    const name = track(uniqueName('glong'));
    const other = track(uniqueName('gothr'));
    const image = join(root, name, 'disk.img');
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M'])).exitCode, 0);
    // e2fsck, as update runs it from its PATH, waits on a fifo first: a check of a big image takes that long.
    const real = (await must('sh', ['-c', 'PATH=/usr/sbin:/sbin:$PATH command -v e2fsck'])).trim();
    const wrappers = mkdtempSync('/tmp/thin-lxc-glong-');
    cleanup.add(() => rmSync(wrappers, { recursive: true, force: true }));
    await must('mkfifo', [join(wrappers, 'go')]);
    writeFileSync(join(wrappers, 'e2fsck'), `#!/bin/sh\ntouch ${wrappers}/reached\ntimeout 120 cat ${wrappers}/go >/dev/null\nexec ${real} "$@"\n`, { mode: 0o755 });
    const release = () => sh('timeout', ['10', 'sh', '-c', `echo go > ${join(wrappers, 'go')}`]);
    cleanup.add(release);
    const update = execa(process.execPath, [CLI, 'update', name, '--root', root, '--disk', '128M'], { reject: false, timeout: 180_000, env: { PATH: `${wrappers}:${process.env.PATH}` } });
    let created;
    try {
      assert.ok(await eventually(() => existsSync(join(wrappers, 'reached')), 30_000), 'update runs e2fsck on the image');
      created = await thinLxc(['create', other, '--base', base, '--root', root]);
    } finally {
      await release();
    }
    const updated = await update;
    console.log('create meanwhile:', created.exitCode, created.stderr.trim(), '| update:', updated.exitCode, String(updated.stdout).trim().split('\n').at(-1));
    assert.is(updated.exitCode, 0, String(updated.stderr));
    assert.is(readState(join(root, name)).disk, String(128 * 2 ** 20));
    assert.ok(existsSync(image));
    assert.is(created.exitCode, 0, `create of another container while ${name}'s image was checked: ${created.stderr.trim()}`);
  });

  races('diff and commit of a stopped --disk container whose image a host crash left with a journal to replay read it', async () => {
    const name = track(uniqueName('crash'));
    const image = uniqueName('crimg');
    cleanup.add(() => removeLxcContainer(image));
    const disk = join(root, name, 'disk.img');
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--disk', '64M'])).exitCode, 0);
    assert.is((await startContainer(name)).exitCode, 0);
    await must('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'echo kept > /root/kept; sync']);
    await must('lxc-stop', ['-n', name]);
    // What the image looks like after the host lost power with the container running: its journal is to be replayed
    // at the next mount (the flag ext4 sets while mounted; a clean unmount clears it).
    await must('debugfs', ['-w', '-R', 'feature needs_recovery', disk]);
    const diffed = await thinLxc(['diff', name, '--root', root]);
    console.log('diff:', diffed.exitCode, diffed.stderr.trim().slice(0, 300));
    // diff replayed it: set again for commit.
    await must('debugfs', ['-w', '-R', 'feature needs_recovery', disk]);
    const committed = await thinLxc(['commit', name, image, '--root', root]);
    console.log('commit:', committed.exitCode, committed.stderr.trim().slice(0, 300));
    assert.is(diffed.exitCode, 0, `diff: ${diffed.stderr.trim()}`);
    assert.match(diffed.stdout, 'root/kept');
    assert.is(committed.exitCode, 0, `commit: ${committed.stderr.trim()}`);
    assert.is(readFileSync(join('/var/lib/lxc', image, 'rootfs', 'root', 'kept'), 'utf8'), 'kept\n', 'the commit has the file written before the crash');
    assert.not.match(await must('dumpe2fs', ['-h', disk]), /needs_recovery/, 'the journal was replayed');
  });

  /** A root on a small ext4 of its own (a loop-mounted file), so that it can be filled without filling the host. */
  const smallRoot = async (): Promise<{ fsDir: string; fullRoot: string }> => {
    const fsDir = mkdtempSync('/tmp/thin-lxc-gfull-fs-');
    const fsImage = `${fsDir}.img`;
    cleanup.add(() => rmSync(fsImage, { force: true }));
    cleanup.add(() => rmSync(fsDir, { recursive: true, force: true }));
    await must('truncate', ['-s', '1300M', fsImage]);
    await must('mkfs.ext4', ['-q', '-F', '-m', '0', fsImage]);
    await must('mount', ['-o', 'loop', fsImage, fsDir]);
    cleanup.add(() => sh('umount', [fsDir]));
    return { fsDir, fullRoot: join(fsDir, 'root') };
  };

  /** A stopped --disk 64M container on its own small root, with 6 MiB of files: their digest (`sum` inside) `before`. */
  const stoppedWithFiles = async (label: string) => {
    const { fsDir, fullRoot } = await smallRoot();
    const name = track(uniqueName(label));
    cleanup.add(() => thinLxc(['destroy', name, '--root', fullRoot, '--force']));
    const image = join(fullRoot, name, 'disk.img');
    assert.is((await thinLxc(['create', name, '--base', base, '--root', fullRoot, '--disk', '64M'])).exitCode, 0);
    assert.is((await startContainer(name)).exitCode, 0);
    const sum = 'md5sum /root/d/* | md5sum';
    const before = await must('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', `mkdir -p /root/d && for i in 1 2 3 4 5 6; do dd if=/dev/urandom of=/root/d/f$i bs=64k count=16 2>/dev/null; done; sync; ${sum}`]);
    await must('lxc-stop', ['-n', name]);
    return { fsDir, fullRoot, name, image, sum, before };
  };

  races('update --disk on a host whose filesystem is full leaves the image clean (grown, or refused untouched)', async () => {
    const { fsDir, fullRoot, name, image, sum, before } = await stoppedWithFiles('gfull');
    // The filesystem full but for a few blocks: less than resize2fs writes to grow 64M to 1G.
    const free = Number((await must('df', ['-k', '--output=avail', fsDir])).split('\n')[1]);
    await must('fallocate', ['-l', String((free - 48) * 1024), join(fsDir, 'filler')]);
    const grown = await thinLxc(['update', name, '--root', fullRoot, '--disk', '1G']);
    const check = await sh('e2fsck', ['-fn', image]);
    console.log('update:', grown.exitCode, (grown.stderr || grown.stdout).trim().split('\n').at(-1), '| e2fsck -fn:', check.exitCode, check.stdout.split('\n').slice(1, 4).join(' | '));
    rmSync(join(fsDir, 'filler'));
    assert.is(check.exitCode, 0, `update said: ${(grown.stderr || grown.stdout).trim()}; then the image has errors: ${check.stdout.split('\n').slice(1, 6).join(' | ')}`);
    if (grown.exitCode !== 0) {
      // Refused: before anything was touched, in one line.
      assert.is(grown.exitCode, 2, grown.stderr);
      assert.is(grown.stderr.trim().split('\n').length, 1, grown.stderr);
      assert.match(grown.stderr, /no space on the filesystem of .* to grow .*nothing was changed/);
      assert.is(statSync(image).size, 64 * 2 ** 20, 'the image file keeps its size');
      assert.is(readState(join(fullRoot, name)).disk, String(64 * 2 ** 20), 'the state keeps its limit');
    }
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await must('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', sum]), before, 'its files are intact');
    await must('lxc-stop', ['-n', name]);
  });
  races('update --disk whose resize2fs runs out of space half way (the host filled meanwhile) leaves the image clean and says what is true in one line', async () => {
    const { fsDir, fullRoot, name, image, sum, before } = await stoppedWithFiles('ghalf');
    // resize2fs, as update runs it from its PATH, first fills the host's filesystem but for a few blocks: the host
    // filled up after update looked at its free space.
    const real = (await must('sh', ['-c', 'PATH=/usr/sbin:/sbin:$PATH command -v resize2fs'])).trim();
    const wrappers = mkdtempSync('/tmp/thin-lxc-ghalf-');
    cleanup.add(() => rmSync(wrappers, { recursive: true, force: true }));
    writeFileSync(join(wrappers, 'resize2fs'), `#!/bin/sh\nfree=$(df -k --output=avail ${fsDir} | tail -n 1)\nfallocate -l $(( (free - 48) * 1024 )) ${fsDir}/filler\nexec ${real} "$@"\n`, { mode: 0o755 });
    const grown = await execa(process.execPath, [CLI, 'update', name, '--root', fullRoot, '--disk', '1G'], { reject: false, env: { PATH: `${wrappers}:${process.env.PATH}` } });
    const check = await sh('e2fsck', ['-fn', image]);
    const said = String(grown.stderr || grown.stdout).trim();
    console.log('update:', grown.exitCode, said, '| e2fsck -fn:', check.exitCode, check.stdout.split('\n').slice(1, 4).join(' | '));
    rmSync(join(fsDir, 'filler'), { force: true });
    assert.ok(existsSync(join(wrappers, 'resize2fs')));
    assert.is(check.exitCode, 0, `update said: ${said}; then the image has errors: ${check.stdout.split('\n').slice(1, 6).join(' | ')}`);
    assert.is(grown.exitCode, 2, said);
    assert.is(said.split('\n').length, 1, said);
    assert.match(said, /resize2fs stopped half way .*e2fsck -fy repaired it/);
    assert.is(readState(join(fullRoot, name)).disk, String(64 * 2 ** 20), 'the state keeps the limit it had');
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await must('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', sum]), before, 'its files are intact');
    await must('lxc-stop', ['-n', name]);
    // The same update again, with room now, grows it.
    assert.is((await thinLxc(['update', name, '--root', fullRoot, '--disk', '1G'])).exitCode, 0);
    assert.is((await sh('e2fsck', ['-fn', image])).exitCode, 0, 'clean after the grow');
  });
}

races.run();
