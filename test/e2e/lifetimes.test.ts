// End to end for throwaway containers: --ephemeral (gone once it stops, however it stops) and --tmpfs (a
// write layer in memory, empty at every start), each with ports and bind mounts.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { STARTED_DIR } from '../../src/state/paths.js';
import { STATE_FILE } from '../../src/state/state.js';
import { containerLockName } from '../../src/core/lock.js';
import { HOSTS_DIR, NAMES_DIR } from '../../src/network/dhcp.js';
import { attach, containerSuite, hostMountsMentioning, must, removeLxcContainer, sh, startContainer, tagOf, temporaryRoot, thinLxc, uniqueName, type Ran } from '../helpers/host.js';
import { holdLock, waiterOf } from '../helpers/locks.js';
import { giveSocat, request, rulesOf, startServers } from '../helpers/net.js';

const { tests: lifetimes, runnable, cleanup, base, root } = await containerSuite('ephemeral and tmpfs containers with real LXC', 'lbase');

/** Waits (bounded) until `done` holds; returns whether it did. */
async function eventually(done: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/** LXC's state of a container, as lxc-info tells it ('' when it has none). */
async function lxcState(name: string): Promise<string> {
  return /State:\s+(\S+)/.exec((await sh('lxc-info', ['-n', name, '-s'])).stdout)?.[1] ?? '';
}

/** The pid of a running container's init, or null. */
async function initPid(name: string): Promise<string | null> {
  return /PID:\s+(\d+)/.exec((await sh('lxc-info', ['-n', name, '-p'])).stdout)?.[1] ?? null;
}

function readIfAny(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8').trim() : '(no hook.log)';
}

if (runnable) {
  const host = temporaryRoot();
  const port = () => 41_000 + Math.floor(Math.random() * 9_000);
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  /** Everything of the container on the host: its directory, registration, reservation, name and rules. */
  const traces = async (name: string, tag: string) => ({
    dir: existsSync(join(root, name)),
    startMark: existsSync(join(root, STARTED_DIR, name)),
    registration: existsSync(join('/var/lib/lxc', name)),
    reservation: existsSync(join(HOSTS_DIR, name)),
    dnsName: existsSync(join(NAMES_DIR, name)),
    rules: (await rulesOf(tag)).length,
    listed: (await must('lxc-ls', ['-1'])).split('\n').includes(name),
  });
  const none = { dir: false, startMark: false, registration: false, reservation: false, dnsName: false, rules: 0, listed: false };

  lifetimes.before(() => {
    cleanup.add(() => sh('rm', ['-rf', host]));
    mkdirSync(join(host, 'data'));
    writeFileSync(join(host, 'data', 'hello.txt'), 'from the host\n');
  });

  lifetimes('ephemeral with a port and a mount: both work, and lxc-stop leaves no directory, registration, address, name or rule', async () => {
    const name = track(uniqueName('eph'));
    const hostPort = port();
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--ephemeral', '-p', `${hostPort}:80`, '-m', `${join(host, 'data')}:/data`]);
    assert.is(created.exitCode, 0, created.stderr);
    assert.match(created.stdout, 'ephemeral (destroyed when it stops)');
    const tag = tagOf(join(root, name));
    giveSocat(join(root, name));
    assert.is((await startContainer(name)).exitCode, 0);
    await startServers(name);
    assert.is(await request('127.0.0.1', hostPort), `tcp-${name}`);
    assert.is(await attach(name, 'cat /data/hello.txt'), 'from the host');
    await must('lxc-stop', ['-n', name]);
    // LXC reports STOPPED before its post-stop hooks run: the removal follows within moments.
    assert.ok(await eventually(() => !existsSync(join(root, name))), 'the directory goes');
    assert.equal(await traces(name, tag), none);
    assert.is(readFileSync(join(host, 'data', 'hello.txt'), 'utf8'), 'from the host\n', 'the bind-mounted host folder is untouched');
  });

  lifetimes('ephemeral: poweroff inside removes it too', async () => {
    const name = track(uniqueName('epo'));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--ephemeral', '-p', `${port()}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const tag = tagOf(join(root, name));
    assert.is((await startContainer(name)).exitCode, 0);
    await sh('lxc-attach', ['-n', name, '--', 'poweroff']);
    // Nobody waits for its hooks here: the directory goes first (renamed), then the rest, moments later.
    await eventually(async () => JSON.stringify(await traces(name, tag)) === JSON.stringify(none));
    assert.equal(await traces(name, tag), none);
  });

  lifetimes('ephemeral: reboot inside restarts it (a new init; its port forwards and its mount works again), and a later lxc-stop removes it', async () => {
    const name = track(uniqueName('erb'));
    const hostPort = port();
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--ephemeral', '-p', `${hostPort}:80`, '-m', `${join(host, 'data')}:/data`]);
    assert.is(created.exitCode, 0, created.stderr);
    const dir = join(root, name);
    const tag = tagOf(dir);
    giveSocat(dir);
    assert.is((await startContainer(name)).exitCode, 0);
    await startServers(name);
    assert.is(await request('127.0.0.1', hostPort), `tcp-${name}`);
    const firstInit = await initPid(name);
    assert.ok(firstInit, 'the first start has an init');
    const rulesBefore = (await rulesOf(tag)).sort();

    await sh('lxc-attach', ['-n', name, '--', 'reboot']);
    // busybox's init takes a few seconds to go down; LXC then runs the post-stop hooks (LXC_TARGET=reboot) and starts it again.
    const restarted = await eventually(async () => {
      const pid = await initPid(name);
      return pid !== null && pid !== firstInit && (await lxcState(name)) === 'RUNNING';
    }, 60_000);
    assert.ok(restarted, `${name} is RUNNING again with a new init (${await lxcState(name)}, init ${await initPid(name)}; it was ${firstInit}): ${readIfAny(join(dir, 'hook.log'))}`);
    assert.ok(existsSync(join(dir, 'image', 'config')), 'the container still exists');
    assert.ok(existsSync(join(root, STARTED_DIR, name)), "the restart marks it started again, so a crash after it is still cleaned up");
    // ports-down removed the first run's rules (its LXC_PID), and the restart's start-host put them back: one set.
    assert.equal((await rulesOf(tag)).sort(), rulesBefore, 'the same rules as before the reboot, once');
    await startServers(name);
    assert.is(await request('127.0.0.1', hostPort), `tcp-${name}`, 'its port forwards again');
    assert.is(await attach(name, 'cat /data/hello.txt'), 'from the host', 'its mount is there again');
    const listed = await thinLxc(['list', '--root', root]);
    assert.is(listed.exitCode, 0, listed.stderr);
    assert.match(listed.stdout, name, "thin-lxc's sweep leaves a rebooted ephemeral container alone");

    await must('lxc-stop', ['-n', name]);
    assert.ok(await eventually(() => !existsSync(dir)), 'a later stop removes it');
    assert.equal(await traces(name, tag), none);
  });

  lifetimes("ephemeral: a command run while a reboot's post-stop hooks wait neither waits for them nor removes the container", async () => {
    const name = track(uniqueName('erw'));
    const other = track(uniqueName('eot'));
    for (const made of [name, other]) {
      const created = await thinLxc(['create', made, '--base', base, '--root', root, '--ephemeral', '-p', `${port()}:80`]);
      assert.is(created.exitCode, 0, created.stderr);
    }
    const dir = join(root, name);
    assert.is((await startContainer(name)).exitCode, 0);
    const firstInit = await initPid(name);
    // The container's lock, held here, holds its reboot's post-stop hooks back (ports-down takes it first).
    const held = await holdLock(containerLockName(dir));
    cleanup.add(() => held.release());
    let destroyed: Ran | undefined;
    let hookStillWaited = false;
    try {
      await sh('lxc-attach', ['-n', name, '--', 'reboot']);
      assert.ok(await eventually(() => waiterOf(containerLockName(dir), dir) !== undefined, 60_000), "the reboot's post-stop hook waits for the lock");
      // A command about another container (list would ask LXC about this one too, and LXC answers no state until the
      // hooks are done) that runs the sweep and takes no host-wide lock, which other commands may hold for seconds:
      // the hold lasts only as long as its own work, well within the hook's 20 s wait.
      destroyed = await thinLxc(['destroy', other, '--root', root, '--dry-run']);
      hookStillWaited = waiterOf(containerLockName(dir), dir) !== undefined;
    } finally {
      await held.release();
    }
    assert.is(destroyed?.exitCode, 0, destroyed?.stderr);
    assert.match(destroyed?.stdout ?? '', `Would destroy thin container ${other}`);
    assert.ok(hookStillWaited, "destroy was done while the hook still waited: its sweep did not wait for the rebooting container's hooks");
    const restarted = await eventually(async () => {
      const pid = await initPid(name);
      return pid !== null && pid !== firstInit && (await lxcState(name)) === 'RUNNING';
    }, 60_000);
    assert.ok(restarted, `${name} is RUNNING again with a new init, not removed by the sweep: ${readIfAny(join(dir, 'hook.log'))}`);
    await must('lxc-stop', ['-n', name]);
    assert.ok(await eventually(() => !existsSync(dir)), 'a later stop removes it');
  });

  lifetimes('ephemeral: a crash (lxc-start killed) runs no hook; the next thin-lxc command removes it; one never started is kept', async () => {
    const crashed = track(uniqueName('ecr'));
    const idle = track(uniqueName('eid'));
    for (const name of [crashed, idle]) {
      const created = await thinLxc(['create', name, '--base', base, '--root', root, '--ephemeral', '-p', `${port()}:80`]);
      assert.is(created.exitCode, 0, created.stderr);
    }
    const tag = tagOf(join(root, crashed));
    assert.is((await startContainer(crashed)).exitCode, 0);
    // SIGKILL to the monitor: LXC gives the container's init SIGKILL with it, and no hook runs.
    await must('pkill', ['-KILL', '-f', `^\\[lxc monitor\\] /var/lib/lxc ${crashed}$`]);
    await must('lxc-wait', ['-n', crashed, '-s', 'STOPPED', '-t', '10']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(existsSync(join(root, crashed)), 'nothing ran at the crash: the container is still there');
    assert.ok(existsSync(join(root, STARTED_DIR, crashed)), 'marked as started');
    assert.ok((await rulesOf(tag)).length > 0, "and so are its rules, until thin-lxc's next command");

    const listed = await thinLxc(['list', '--root', root]);
    assert.is(listed.exitCode, 0, listed.stderr);
    assert.not.match(listed.stdout, crashed);
    assert.equal(await traces(crashed, tag), none);
    assert.match(listed.stdout, idle, 'an ephemeral container that never started is not a leftover');
    assert.is((await thinLxc(['destroy', idle, '--root', root])).exitCode, 0);
  });

  lifetimes('ephemeral: a start that fails in its mount hook (its write layer missing) still destroys it at its stop', async () => {
    const name = track(uniqueName('efl'));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--ephemeral', '-p', `${port()}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const dir = join(root, name);
    const tag = tagOf(dir);
    // A damaged container: the mount hook refuses to mount a union without its write layer.
    renameSync(join(dir, 'wlayer'), join(dir, 'wlayer.moved'));
    const started = await sh('lxc-start', ['-n', name, '-d']);
    assert.is.not(started.exitCode, 0, 'the start fails');
    // The mount hook marked the start before it refused, and the stop that ends the failed start destroys it.
    assert.ok(await eventually(() => !existsSync(dir), 30_000), `the failed start left it: ${readIfAny(join(dir, 'hook.log'))}`);
    assert.equal(await traces(name, tag), none);
  });

  lifetimes('an ephemeral container cannot be a base: create and create --dry-run on it are refused with one line, and leave nothing', async () => {
    const ephemeral = track(uniqueName('ebs'));
    const created = await thinLxc(['create', ephemeral, '--base', base, '--root', root, '--ephemeral']);
    assert.is(created.exitCode, 0, created.stderr);
    const before = readdirSync(root).sort();
    const expected = `thin-lxc: base "${ephemeral}" is an ephemeral thin container (destroyed when it stops), which cannot be a base: stack on its base ${base} instead, or make one without --ephemeral`;
    for (const dryRun of [[], ['--dry-run']]) {
      const child = track(uniqueName('ech'));
      const refused = await thinLxc(['create', child, '--base', ephemeral, '--root', root, ...dryRun]);
      assert.is(refused.stderr.trim(), expected, `create ${dryRun.join(' ')}`);
      assert.is(refused.exitCode, 2);
      assert.equal(readdirSync(root).sort(), before, 'nothing made in the root');
      assert.not.ok(existsSync(join('/var/lib/lxc', child)), 'nor registered');
    }
    assert.is((await thinLxc(['destroy', ephemeral, '--root', root])).exitCode, 0);
  });

  lifetimes('an ephemeral base (made before that refusal) that stopped fails no command: list, doctor and destroy of its child work, and it goes after its child', async () => {
    const old = track(uniqueName('eold'));
    const child = track(uniqueName('echd'));
    assert.is((await thinLxc(['create', old, '--base', base, '--root', root, '-p', `${port()}:80`])).exitCode, 0);
    const made = await thinLxc(['create', child, '--base', old, '--root', root]);
    assert.is(made.exitCode, 0, made.stderr);
    // What an older thin-lxc let one make: a base that is ephemeral, with the hook that removes it at its stop.
    const stateFile = join(root, old, STATE_FILE);
    writeFileSync(stateFile, readFileSync(stateFile, 'utf8').replace('ephemeral = "false"', 'ephemeral = "true"'));
    assert.is((await thinLxc(['refresh', old, '--root', root])).exitCode, 0);
    const tag = tagOf(join(root, old));
    assert.is((await startContainer(old)).exitCode, 0);
    await must('lxc-stop', ['-n', old]); // returns after its post-stop hooks
    assert.ok(existsSync(join(root, old, 'image', 'config')), 'its hook left the base of a thin container in place');
    assert.ok(existsSync(join(root, STARTED_DIR, old)), 'stopped with its start marked: what the sweep looks for');

    const listed = await thinLxc(['list', '--root', root]);
    assert.is(listed.stderr, '', 'list says nothing about it');
    assert.is(listed.exitCode, 0);
    assert.match(listed.stdout, old, 'the sweep leaves a base alone');
    assert.match(listed.stdout, child);
    const doctor = await thinLxc(['doctor', '--root', root]);
    assert.not.match(doctor.stderr + doctor.stdout, 'is the base of', 'doctor is not stopped by the sweep');
    assert.match(doctor.stdout, /root directory +\S/, 'doctor ran its checks');
    const destroyed = await thinLxc(['destroy', child, '--root', root]);
    assert.is(destroyed.stderr, '');
    assert.is(destroyed.exitCode, 0, 'its child can be destroyed');

    const after = await thinLxc(['list', '--root', root]);
    assert.is(after.exitCode, 0, after.stderr);
    assert.not.match(after.stdout, old, 'with no thin container on it any more, the next command removes it');
    assert.equal(await traces(old, tag), none);
  });

  lifetimes('a crashed ephemeral container the sweep cannot remove (a mount under it) fails no command: one warning, and it goes once it can', async () => {
    const crashed = track(uniqueName('emt'));
    assert.is((await thinLxc(['create', crashed, '--base', base, '--root', root, '--ephemeral', '-p', `${port()}:80`])).exitCode, 0);
    const tag = tagOf(join(root, crashed));
    assert.is((await startContainer(crashed)).exitCode, 0);
    await must('pkill', ['-KILL', '-f', `^\\[lxc monitor\\] /var/lib/lxc ${crashed}$`]);
    await must('lxc-wait', ['-n', crashed, '-s', 'STOPPED', '-t', '10']);
    // A user's bind mount under its directory: removal never crosses it, so the sweep's removal fails.
    const source = join(host, 'kept');
    mkdirSync(source, { recursive: true });
    writeFileSync(join(source, 'precious'), 'mine\n');
    const target = join(root, crashed, 'wlayer', 'mnt-user');
    mkdirSync(target, { recursive: true });
    await must('mount', ['--bind', source, target]);
    cleanup.add(() => sh('umount', [target]));

    const other = track(uniqueName('eok'));
    for (const args of [['list'], ['create', other, '--base', base], ['destroy', other]]) {
      const ran = await thinLxc([...args, '--root', root]);
      assert.is(ran.exitCode, 0, `${args[0]} works: ${ran.stderr}`);
      const warnings = ran.stderr.trim().split('\n');
      assert.is(warnings.length, 1, `one line on stderr: ${ran.stderr}`);
      assert.match(warnings[0]!, `thin-lxc: warning: ephemeral container ${crashed} stopped without its hook and could not be removed: ${target} is a mount point`);
    }
    assert.is(readFileSync(join(source, 'precious'), 'utf8'), 'mine\n', "the mount's source is untouched");
    assert.ok(existsSync(join(root, crashed, 'image', 'config')), 'the container is left whole');

    await must('umount', [target]);
    const listed = await thinLxc(['list', '--root', root]);
    assert.is(listed.exitCode, 0, listed.stderr);
    assert.is(listed.stderr, '');
    assert.equal(await traces(crashed, tag), none);
    assert.is(readFileSync(join(source, 'precious'), 'utf8'), 'mine\n');
  });

  lifetimes('--ephemeral with --autostart is refused, and leaves nothing', async () => {
    const before = readdirSync(root).sort();
    const refused = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', root, '--ephemeral', '--autostart']);
    assert.is(refused.exitCode, 2);
    assert.is(refused.stderr.trim(), 'thin-lxc: --ephemeral and --autostart contradict each other (an ephemeral container is gone after its first stop): choose one');
    assert.equal(readdirSync(root).sort(), before);
  });

  lifetimes('tmpfs with a port and a mount: the write layer is in memory in the container only, and empty at every start', async () => {
    const name = track(uniqueName('tmp'));
    const hostPort = port();
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--tmpfs=64M', '-p', `${hostPort}:80`, '-m', `${join(host, 'data')}:/data`]);
    assert.is(created.exitCode, 0, created.stderr);
    const dir = join(root, name);
    giveSocat(dir); // into the disk layer, which a tmpfs container sees read-only under its memory
    assert.is((await startContainer(name)).exitCode, 0);
    await startServers(name);
    assert.is(await request('127.0.0.1', hostPort), `tcp-${name}`);
    assert.is(await attach(name, 'cat /data/hello.txt'), 'from the host');

    const rootMount = await attach(name, 'grep " / overlay " /proc/mounts');
    assert.match(rootMount, `upperdir=${dir}/memory/upper`);
    assert.match(rootMount, `lowerdir=${dir}/wlayer:`);
    assert.equal(hostMountsMentioning(dir), [], 'the host sees no mount of it');

    await attach(name, 'echo written > /root/scratch && dd if=/dev/zero of=/root/big bs=1M count=8 2>/dev/null');
    assert.is(await attach(name, 'cat /root/scratch'), 'written');
    assert.not.ok(existsSync(join(dir, 'wlayer', 'root', 'scratch')), 'nothing is written to disk');
    const full = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'dd if=/dev/zero of=/root/huge bs=1M count=100']);
    assert.is.not(full.exitCode, 0, 'the write layer holds at most its 64M');
    assert.match(full.stderr, 'No space left on device');

    await must('lxc-stop', ['-n', name]);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await attach(name, 'ls /root'), '', 'every start begins with an empty write layer');
    await startServers(name);
    assert.is(await request('127.0.0.1', hostPort), `tcp-${name}`, 'forwarding works again after the restart');
    await must('lxc-stop', ['-n', name]);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  lifetimes('--tmpfs with a size that is not one is refused, and leaves nothing', async () => {
    const before = readdirSync(root).sort();
    const refused = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', root, '--tmpfs=lots']);
    assert.is(refused.exitCode, 2);
    assert.is(refused.stderr.trim(), 'thin-lxc: tmpfs size "lots" is not a size: write it like 512M or 2G');
    assert.equal(readdirSync(root).sort(), before);
  });
}

lifetimes.run();
