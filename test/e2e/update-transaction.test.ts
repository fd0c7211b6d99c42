// update is all or nothing: when a live change fails (cgroup v1 refuses a memory limit below what the container
// uses, with EBUSY), its forwarding, limits, config and state stay as they were, and the same update again is
// tried again, never "unchanged".
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { containerLockName, lockHolder } from '../../src/core/lock.js';
import { familiesToLook, removeForwarding } from '../../src/forward/apply.js';
import { hostCgroupVersion } from '../../src/lxc/limits.js';
import { readState } from '../../src/state/state.js';
import { attach, containerSuite, must, removeLxcContainer, type Ran, sh, startContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually, waiterOf } from '../helpers/locks.js';
import { giveSocat, request, rulesLeftAfterStop, startServers } from '../helpers/net.js';
import { CLI } from '../helpers/paths.js';
import { skipUnless } from '../helpers/skip.js';

const { tests: transaction, runnable, cleanup, base, root } = await containerSuite('update is all or nothing', 'tbase');

/** The host ports of the DNAT rules in a container's own chain, sorted. */
async function forwardedPorts(tag: string): Promise<string[]> {
  const nat = (await must('iptables-save', ['-t', 'nat'])).split('\n').filter((line) => line.startsWith(`-A ${tag}-D `) && line.includes('-j DNAT'));
  return nat.map((line) => /--dport (\d+)/.exec(line)?.[1] ?? '').sort();
}

/**
 * In after(): the container removed first, so that its stop's post-stop hook has had its turn and no start of it (a
 * reboot still under way when a test failed) can put its forwarding back; then whatever of its forwarding is left,
 * recorded or only in the live ruleset.
 */
function removeWithForwarding(name: string, dir: string): void {
  const tag = tagOf(dir);
  const families = familiesToLook(readState(dir));
  cleanup.add(async () => {
    await removeLxcContainer(name);
    removeForwarding(tag, { reconcile: true, unrecorded: families });
  });
}

// On cgroup v2 memory.max below usage reclaims or OOM-kills instead of failing: the refusal is v1's.
if (runnable && skipUnless(transaction, 'a live limit the kernel refuses', hostCgroupVersion() === 1, 'the host is on cgroup v2, where memory.max never refuses')) {
  transaction('a memory limit below usage is refused: ports, limits, config and state unchanged; the same update again tries again, and applies once it can', async () => {
    const name = uniqueName('mem');
    cleanup.add(() => removeLxcContainer(name));
    const [kept, added] = [30_000 + Math.floor(Math.random() * 4_000), 34_500 + Math.floor(Math.random() * 4_000)];
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${kept}:80`, '--memory', '256M']);
    assert.is(created.exitCode, 0, created.stderr);
    const dir = join(root, name);
    giveSocat(dir);
    const tag = tagOf(dir);
    removeWithForwarding(name, dir);
    const files = () => [readFileSync(join(dir, 'thin-lxc.ini'), 'utf8'), readFileSync(join(dir, 'image', 'config'), 'utf8')];
    const limit = async () => (await must('lxc-cgroup', ['-n', name, 'memory.limit_in_bytes'])).trim();
    assert.is((await startContainer(name)).exitCode, 0);
    await startServers(name);
    // 100 MB in a tmpfs inside: charged to the container, and with no swap not reclaimable.
    await attach(name, 'mkdir -p /tmp/fill && mount -t tmpfs -o size=200M none /tmp/fill && dd if=/dev/zero of=/tmp/fill/data bs=1M count=100 2>/dev/null');
    const before = files();

    const update = ['update', name, '--root', root, '--memory', '50M', '-p', `${added}:80`];
    for (const attempt of ['first', 'second']) {
      const refused = await thinLxc(update);
      assert.is(refused.exitCode, 2, `${attempt}: refused as the user's problem: ${refused.stdout}${refused.stderr}`);
      assert.match(refused.stderr, /^thin-lxc: .*memory/, `${attempt}: one line saying why`);
      assert.is(refused.stderr.trim().split('\n').length, 1, `${attempt}: one line`);
      assert.equal(files(), before, `${attempt}: state and config as they were`);
      assert.is(await limit(), '268435456', `${attempt}: the limit in force as it was`);
      assert.equal(await forwardedPorts(tag), [String(kept)], `${attempt}: the forwarding as it was`);
    }
    assert.is(await request('127.0.0.1', kept), `tcp-${name}`, 'the old port still answers');

    await attach(name, 'rm /tmp/fill/data');
    const applied = await thinLxc(update);
    assert.is(applied.exitCode, 0, applied.stderr);
    assert.match(applied.stdout, 'memory: 52428800');
    assert.is(await limit(), '52428800', 'in force now');
    assert.equal(await forwardedPorts(tag), [String(kept), String(added)].sort());
    assert.is(await request('127.0.0.1', added), `tcp-${name}`, 'the new port answers');
    const again = await thinLxc([...update, '--json']);
    assert.is(JSON.parse(again.stdout).changed, false, 'and only now is the same update unchanged');

    await must('lxc-stop', ['-n', name, '-k']);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag)), []);
  });
}

if (runnable) {
  transaction("applying the forwarding fails (a rule of the host's own still jumps to the container's chain): config and state unchanged, the old port answers, the same update again applies once it can", async () => {
    const name = uniqueName('fwd');
    cleanup.add(() => removeLxcContainer(name));
    const hostPort = 30_000 + Math.floor(Math.random() * 8_000);
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${hostPort}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const dir = join(root, name);
    giveSocat(dir);
    const tag = tagOf(dir);
    removeWithForwarding(name, dir);
    assert.is((await startContainer(name)).exitCode, 0);
    await startServers(name);
    // A chain of the test's own that jumps to the container's: iptables refuses to delete a chain still referenced.
    const chain = `H4REF${process.pid.toString(36)}`.slice(0, 28);
    const dropReference = async () => {
      await sh('iptables', ['-t', 'nat', '-F', chain]);
      await sh('iptables', ['-t', 'nat', '-X', chain]);
    };
    cleanup.add(dropReference);
    await must('iptables', ['-t', 'nat', '-N', chain]);
    await must('iptables', ['-t', 'nat', '-A', chain, '-j', `${tag}-D`]);
    const files = () => [readFileSync(join(dir, 'thin-lxc.ini'), 'utf8'), readFileSync(join(dir, 'image', 'config'), 'utf8')];
    const before = files();

    const update = ['update', name, '--root', root, '--unpublish', String(hostPort)];
    for (const attempt of ['first', 'second']) {
      const refused = await thinLxc(update);
      assert.is.not(refused.exitCode, 0, `${attempt}: the update failed: ${refused.stdout}`);
      assert.is(refused.stderr.trim().split('\n').length, 1, `${attempt}: one line: ${refused.stderr}`);
      assert.equal(files(), before, `${attempt}: state and config as they were`);
      assert.equal(await forwardedPorts(tag), [String(hostPort)], `${attempt}: the forwarding as it was`);
      assert.is(await request('127.0.0.1', hostPort), `tcp-${name}`, `${attempt}: the port still answers`);
    }

    await dropReference();
    const applied = await thinLxc(update);
    assert.is(applied.exitCode, 0, applied.stderr);
    assert.equal(await forwardedPorts(tag), [], 'no port forwarded now');
    assert.is(JSON.parse((await thinLxc([...update.slice(0, 2), '--root', root, '--json'])).stdout).changed, false);
    await must('lxc-stop', ['-n', name, '-k']);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag)), []);
  });
}


if (runnable) {
  transaction('update --memory while the container reboots (its post-stop hook waiting for the lock update holds): update gives up in one line, and the reboot goes on', async () => {
    const name = uniqueName('rbt');
    cleanup.add(() => removeLxcContainer(name));
    const port = 39_000 + Math.floor(Math.random() * 900);
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${port}:80`, '--memory', '256M']);
    assert.is(created.exitCode, 0, created.stderr);
    const dir = join(root, name);
    const tag = tagOf(dir);
    removeWithForwarding(name, dir);
    assert.is((await startContainer(name)).exitCode, 0);
    const pid = async () => (await sh('lxc-info', ['-n', name, '-p', '-H'])).stdout.trim();
    const firstInit = await pid();
    const state = readFileSync(join(dir, 'thin-lxc.ini'), 'utf8');

    // update takes the container's lock, then runs lxc-cgroup, which (a wrapper first on its PATH) waits on a fifo:
    // the reboot then comes while update holds the container's lock. (update --memory takes no 'create' lock.)
    const lock = containerLockName(dir);
    const real = (await must('sh', ['-c', 'command -v lxc-cgroup'])).trim();
    const wrappers = mkdtempSync('/tmp/thin-lxc-rbt-');
    cleanup.add(() => rmSync(wrappers, { recursive: true, force: true }));
    await must('mkfifo', [join(wrappers, 'go')]);
    writeFileSync(join(wrappers, 'lxc-cgroup'), `#!/bin/sh\ntouch ${wrappers}/reached\ntimeout 120 cat ${wrappers}/go >/dev/null\nexec ${real} "$@"\n`, { mode: 0o755 });
    const release = () => sh('timeout', ['10', 'sh', '-c', `echo go > ${join(wrappers, 'go')}`]);
    cleanup.add(release);
    let update: Promise<Ran> | undefined;
    try {
      update = thinLxc(['update', name, '--root', root, '--memory', '128M'], { env: { PATH: `${wrappers}:${process.env.PATH}` } });
      // Awaited in after() before the container goes, should an assertion below fail with update still running.
      cleanup.add(() => update);
      assert.ok(
        await eventually(() => existsSync(join(wrappers, 'reached')) && lockHolder(lock)?.purpose === `update ${name}`, 60_000),
        `update holds the container's lock and runs lxc-cgroup (the lock's holder: ${JSON.stringify(lockHolder(lock))})`,
      );
      const updatePid = lockHolder(lock)?.pid;
      // The reboot's post-stop hook now waits for the container's lock, and LXC's monitor with it.
      await sh('lxc-attach', ['-n', name, '--', 'reboot']);
      assert.ok(
        await eventually(() => waiterOf(lock, 'thin-lxc-ports-down') !== undefined && lockHolder(lock)?.pid === updatePid),
        `the reboot's post-stop hook waits for the container's lock, which update holds (its holder: ${JSON.stringify(lockHolder(lock))})`,
      );
    } finally {
      await release();
    }
    const updated = await update!;
    assert.is(updated.exitCode, 2, `update is refused as busy: ${updated.stdout}${updated.stderr}`);
    assert.match(updated.stderr, /^thin-lxc: LXC did not answer for .* within \d+ s/, updated.stderr);
    assert.is(updated.stderr.trim().split('\n').length, 1, 'one line');
    assert.is(readFileSync(join(dir, 'thin-lxc.ini'), 'utf8'), state, 'state as it was');
    assert.ok(await eventually(async () => (await sh('lxc-info', ['-n', name, '-s', '-H'])).stdout.trim() === 'RUNNING' && (await pid()) !== firstInit, 60_000), 'the reboot went on: RUNNING with a new init');
    assert.not.ok(existsSync(join(dir, 'hook.log')) && readFileSync(join(dir, 'hook.log'), 'utf8').includes('timed out'), 'no hook waited out the lock');
    const again = await thinLxc(['update', name, '--root', root, '--memory', '128M']);
    assert.is(again.exitCode, 0, again.stderr);
    await must('lxc-stop', ['-n', name, '-k']);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag)), []);
  });
}

if (runnable) {
  transaction("update removes the staged temporaries a killed update left beside the container's config and state, and only those of dead writers", async () => {
    const name = uniqueName('tmp');
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root]);
    assert.is(created.exitCode, 0, created.stderr);
    const dir = join(root, name);
    // PIDs above the kernel's pid_max limit (4194304) are never alive: a killed writer's. This test's own is alive.
    const stale = [join(dir, '.thin-lxc.ini.tmp-99999999'), join(dir, 'image', '.config.tmp-99999998')];
    const live = join(dir, `.thin-lxc.ini.tmp-${process.pid}`);
    for (const path of [...stale, live]) writeFileSync(path, 'half-written\n');
    const updated = await thinLxc(['update', name, '--root', root, '--memory', '256M']);
    assert.is(updated.exitCode, 0, updated.stderr);
    for (const path of stale) assert.not.ok(existsSync(path), `${path} removed`);
    assert.ok(existsSync(live), "a live writer's temporary is left to it");
  });
}

if (runnable) {
  // First written by the race review (r2): the next update threw away the staged state of an update killed between
  // its two renames, and edited the config from the old state, so the killed update's limit line stayed for good.
  transaction('update killed between renaming its config and its state: the next update of the same field leaves a config that says what the state says', async () => {
    const name = uniqueName('ukill');
    cleanup.add(() => removeLxcContainer(name));
    const dir = join(root, name);
    const config = join(dir, 'image', 'config');
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root])).exitCode, 0);
    const memoryLines = () => readFileSync(config, 'utf8').split('\n').filter((line) => /^lxc\.cgroup2?\.memory\./.test(line));
    assert.equal(memoryLines(), [], 'no memory limit at first');
    // update's second rename(2) (its state, after its config) is where it is killed.
    const killed = await sh('strace', ['-f', '-o', '/dev/null', '-e', 'trace=rename,renameat,renameat2', '-e', 'inject=rename,renameat,renameat2:error=EIO:signal=SIGKILL:when=2', process.execPath, CLI, 'update', name, '--root', root, '--memory', '256M']);
    assert.is.not(killed.exitCode, 0, 'update was killed');
    assert.is(memoryLines().length, 1, 'the config was renamed into place: it has the new limit');
    assert.is(readState(dir).memory, null, 'the state was not: it has no limit');
    // The user lifts the limit (the state says there is none; any other change of it goes the same way).
    const lifted = await thinLxc(['update', name, '--root', root, '--memory', 'none']);
    console.log('update --memory none:', lifted.exitCode, lifted.stdout.trim(), '| config:', memoryLines());
    assert.is(lifted.exitCode, 0, lifted.stderr);
    assert.equal(memoryLines(), [], `the state says no memory limit, and the config still limits ${name} (update said: ${lifted.stdout.trim()})`);
    assert.is(readState(dir).memory, null, 'the state says no limit');
  });
}

transaction.run();
