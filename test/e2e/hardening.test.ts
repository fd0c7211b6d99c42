// Hardening with real LXC: every bad input refused with one line and nothing made, creates killed at random
// moments, concurrent creates and destroys, injected faults, an installation others could change, running bases.
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { HOSTS_DIR } from '../../src/network/dhcp.js';
import { CLI } from '../helpers/paths.js';
import { containerSuite, hostMountsMentioning, must, removeLxcContainer, sh, startContainer, tagOf, temporaryRoot, thinLxc, uniqueName } from '../helpers/host.js';
import { rulesOf } from '../helpers/net.js';

/** What a create or destroy killed half way leaves (src/lifecycle/teardown.ts). */
const HALF_MADE = /^\.(creating|removing)-/;

const { tests: hardening, runnable, cleanup, base, root } = await containerSuite('hardening with real LXC', 'hbase');
const LXCPATH = '/var/lib/lxc';

if (runnable) {
  const port = 30_000 + Math.floor(Math.random() * 10_000);
  const holder = uniqueName('holder');
  let holderIp = '';
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  /**
   * What this run may have made: its own names (uniqueName's prefix) and the odd names the bad inputs try. Other
   * test runs' containers (tlt...) that come and go meanwhile are not this test's to judge.
   */
  const ours = (entry: string) => {
    const name = entry.replace(/^\./, '');
    return name.startsWith(`tlt${process.pid.toString(36)}`) || !name.startsWith('tlt');
  };
  /** Everything thin-lxc could leave on the host, to compare before and after. */
  const hostState = async () => ({
    root: readdirSync(root).sort(),
    lxc: readdirSync(LXCPATH).filter(ours).sort(),
    reservations: existsSync(HOSTS_DIR) ? readdirSync(HOSTS_DIR).filter(ours).sort() : [],
    rules: (await must('iptables-save', [])).split('\n').filter((line) => /TLXC|THIN-LXC/.test(line)).sort(),
  });

  hardening.before(async () => {
    track(holder);
    const made = await thinLxc(['create', holder, '--base', base, '--root', root, '-p', `${port}:80`]);
    assert.is(made.exitCode, 0, made.stderr);
    holderIp = (JSON.parse((await thinLxc(['show', holder, '--root', root, '--json'])).stdout) as { ip: string }).ip;
  });

  hardening('every bad input: non-zero exit, one line naming the field, the value and the fix, nothing made', async () => {
    const fresh = () => uniqueName('bad');
    const create = (...args: string[]) => ['create', ...args, '--root', root];
    const cases: [string[], RegExp][] = [
      [create('--name=', '--base', base), /^thin-lxc: name is empty: use 1 to 63 letters/],
      [create('x'.repeat(64), '--base', base), /^thin-lxc: name "x{64}" is not allowed: use 1 to 63/],
      [create('a b', '--base', base), /^thin-lxc: name "a b" is not allowed: use/],
      [create('a/b', '--base', base), /^thin-lxc: name "a\/b" is not allowed: use/],
      [create('..', '--base', base), /^thin-lxc: name "\.\." is not allowed: use/],
      [create('--name=-x', '--base', base), /^thin-lxc: name "-x" is not allowed: use/],
      [create('a\nlxc.hook.start = /bin/sh', '--base', base), /^thin-lxc: name "a\\nlxc\.hook\.start = \/bin\/sh" is not allowed: use/],
      [create('a\u0007b', '--base', base), /^thin-lxc: name "a\\u0007b" is not allowed/],
      [create(holder, '--base', base), new RegExp(`^thin-lxc: thin container ${holder} exists with another spec \\(publish is ${port}:80/tcp, asked none\\): pass --replace`)],
      [create(base, '--base', base), new RegExp(`^thin-lxc: name "${base}" is already used by an LXC container \\(${LXCPATH}/${base}\\): choose another name`)],
      [create(fresh(), '--id', '../x', '--base', base), /^thin-lxc: id "\.\.\/x" is not allowed: use/],
      [create(fresh(), '--ip', 'ten.0.3.5', '--base', base), /^thin-lxc: ip "ten\.0\.3\.5" is not an IPv4 address: write it like 10\.0\.3\.67/],
      [create(fresh(), '--ip', '192.168.1.5', '--base', base), /^thin-lxc: ip 192\.168\.1\.5 is outside lxcbr0's subnet 10\.0\.3\.0\/24: choose one inside it/],
      [create(fresh(), '--ip', '10.0.3.0', '--base', base), /^thin-lxc: ip 10\.0\.3\.0 is the network address of 10\.0\.3\.0\/24: choose another/],
      [create(fresh(), '--ip', '10.0.3.1', '--base', base), /^thin-lxc: ip 10\.0\.3\.1 is the gateway \(lxcbr0's own address\)/],
      [create(fresh(), '--ip', '10.0.3.255', '--base', base), /^thin-lxc: ip 10\.0\.3\.255 is the broadcast address/],
      [create(fresh(), '--ip', holderIp, '--base', base), new RegExp(`^thin-lxc: ip ${holderIp.replace(/\./g, '\\.')} is already used by thin container ${holder}`)],
      [create(fresh(), '-p', '0:80', '--base', base), /^thin-lxc: publish "0:80": "0" is not a port: use a number from 1 to 65535/],
      [create(fresh(), '-p', '70000:80', '--base', base), /^thin-lxc: publish "70000:80": "70000" is not a port/],
      [create(fresh(), '-p', 'http:80', '--base', base), /^thin-lxc: publish "http:80": "http" is not a port/],
      [create(fresh(), '-p', '90-80:90-80', '--base', base), /^thin-lxc: publish "90-80:90-80": range 90-80 is reversed: write it low-high/],
      [create(fresh(), '-p', '80-81:80-82', '--base', base), /^thin-lxc: publish "80-81:80-82" maps ranges of different lengths: make both ranges the same size/],
      [create(fresh(), '-p', `${port}:81`, '--base', base), new RegExp(`^thin-lxc: host port of ${port}:81/tcp is already published by thin container ${holder}`)],
      [create(fresh(), '-m', '/tmp', '--base', base), /^thin-lxc: mount "\/tmp" is malformed: write it as HOST_PATH:CONTAINER_PATH\[:ro\]/],
      [create(fresh(), '-m', ':/app', '--base', base), /^thin-lxc: mount ":\/app" has an empty side/],
      [create(fresh(), '-m', '/tmp:app', '--base', base), /^thin-lxc: mount "\/tmp:app": the container path "app" must be absolute, e\.g\. \/app/],
      [create(fresh(), '-m', '/no/such/path:/app', '--base', base), /^thin-lxc: mount "\/no\/such\/path:\/app": host path \/no\/such\/path does not exist; create it first/],
      [create(fresh(), '--base', 'no-such-base'), /^thin-lxc: base "no-such-base" is not an LXC container: \/var\/lib\/lxc\/no-such-base\/config does not exist; make one with lxc-create/],
      [create(fresh(), '--base', '/tmp'), /^thin-lxc: base "\/tmp" is not an LXC container: \/tmp\/config does not exist/],
      [create(fresh(), '--base', join(root, holder)), new RegExp(`^thin-lxc: base "${join(root, holder)}" is not an LXC container`)],
      [create(fresh(), '--memory', '512M\nlxc.hook.start = /bin/sh', '--base', base), /^thin-lxc: memory "512M\\nlxc\.hook\.start = \/bin\/sh" is not a size: write it like 512M or 2G/],
      [create(fresh(), '--cpus', '1 2', '--base', base), /^thin-lxc: cpus "1 2" is not a CPU count this host has: give a number from 0\.01 to \d+/],
      [create(fresh(), '--tmpfs=1G,mode=777', '--base', base), /^thin-lxc: tmpfs size "1G,mode=777" is not a size/],
      [['update', holder, '--root', root, '-m', '/no/such/path:/app'], /^thin-lxc: mount "\/no\/such\/path:\/app": host path \/no\/such\/path does not exist/],
      [['update', holder, '--root', root, '--unmount', '/app'], new RegExp(`^thin-lxc: ${holder} has no mount "/app": it mounts nothing`)],
      [['commit', holder, 'a\nb', '--root', root], /^thin-lxc: name "a\\nb" is not allowed: use/],
      [['commit', holder, base, '--root', root], new RegExp(`^thin-lxc: name "${base}" is already used by a container`)],
      [['destroy', 'nothing-here', '--root', root], /^thin-lxc: no thin container with id or name "nothing-here" in .*: see thin-lxc list/],
      [['show', 'nothing-here', '--root', root], /^thin-lxc: no thin container with id or name "nothing-here"/],
      [['diff', 'nothing-here', '--root', root], /^thin-lxc: no thin container with id or name "nothing-here"/],
    ];
    const before = await hostState();
    for (const [args, expected] of cases) {
      const result = await thinLxc(args);
      assert.is.not(result.exitCode, 0, JSON.stringify(args));
      assert.is(result.stderr.trimEnd().split('\n').length, 1, `one line for ${JSON.stringify(args)}: ${result.stderr}`);
      assert.match(result.stderr, expected, JSON.stringify(args));
    }
    assert.equal(await hostState(), before, 'no directory, registration, reservation or rule was made');
  });

  hardening('a create killed at any moment, and surely some mid-way, leaves nothing list shows; the next create sweeps the rest', async () => {
    const names: string[] = [];
    // Even runs: kills spread over a whole create, from Node's startup to just after it ends, timed from a
    // complete create on this machine. Odd runs: killed the moment its staging directory appears, i.e. after
    // it took the lock and while it registers and reserves: a kill that surely lands mid-create.
    const probe = track(uniqueName('killprobe'));
    const started = performance.now();
    assert.is((await thinLxc(['create', probe, '--base', base, '--root', root, '-p', `${port + 99}:80`])).exitCode, 0);
    const duration = performance.now() - started;
    assert.is((await thinLxc(['destroy', probe, '--root', root])).exitCode, 0);
    let midway = 0;
    for (let run = 0; run < 16; run++) {
      const name = track(uniqueName(`kill${run}`));
      names.push(name);
      const child = execa(process.execPath, [CLI, 'create', name, '--base', base, '--root', root, '-p', `${port + 100 + run}:80`], { reject: false });
      if (run % 2 === 0) {
        await new Promise((resolve) => setTimeout(resolve, duration * (0.2 + run * 0.06)));
        child.kill('SIGKILL');
      } else {
        const staging = join(root, `.creating-${name}-${child.pid}`);
        // Polled without yielding, bounded in time: the directory lives for a few milliseconds.
        for (const deadline = Date.now() + 10_000; !existsSync(staging) && Date.now() < deadline; );
        child.kill('SIGKILL');
        if (existsSync(staging)) midway++;
      }
      await child;
    }
    assert.ok(midway >= 1, 'at least one kill landed while the create was half done');
    // list only reads; the next command that changes the root (a create, a destroy) finishes what was left.
    const sweeper = track(uniqueName('sweeper'));
    assert.is((await thinLxc(['create', sweeper, '--base', base, '--root', root])).exitCode, 0);
    assert.is((await thinLxc(['destroy', sweeper, '--root', root])).exitCode, 0);
    const listed = JSON.parse((await thinLxc(['list', '--root', root, '--json'])).stdout) as { name: string; ip: string }[];
    assert.equal(readdirSync(root).filter((entry) => HALF_MADE.test(entry)), [], 'the sweep removed every half-made directory');
    for (const name of names) {
      const complete = listed.some((entry) => entry.name === name);
      const story = () => `${name}: root has ${readdirSync(root).filter((entry) => entry.includes(name)).join(', ') || 'nothing of it'}`;
      assert.is(existsSync(join(LXCPATH, name)), complete, `${name}: registered exactly when listed (${story()})`);
      assert.is(existsSync(join(HOSTS_DIR, name)), complete, `${name}: reserved exactly when listed`);
      if (complete) assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
    }
    const completed = listed.filter((entry) => names.includes(entry.name)).length;
    console.log(`  (one create: ${duration.toFixed(0)} ms; killed creates: ${names.length}, of which ${midway} while half done and ${completed} after they completed)`);
  });

  hardening('10 creates at once get 10 distinct addresses and all start; creates racing destroys keep the state whole', async () => {
    const names = Array.from({ length: 10 }, (_, index) => track(uniqueName(`par${index}`)));
    const results = await Promise.all(names.map((name) => thinLxc(['create', name, '--base', base, '--root', root])));
    for (const result of results) assert.is(result.exitCode, 0, result.stderr);
    const listed = JSON.parse((await thinLxc(['list', '--root', root, '--json'])).stdout) as { name: string; ip: string }[];
    const ips = names.map((name) => listed.find((entry) => entry.name === name)?.ip);
    assert.is(new Set(ips).size, 10, `distinct: ${ips.join(' ')}`);
    for (const name of names) assert.is((await startContainer(name)).exitCode, 0, name);
    for (const [index, name] of names.entries()) {
      assert.match(await must('lxc-attach', ['-n', name, '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0']), ` ${ips[index]}/`);
    }
    await Promise.all(names.map((name) => must('lxc-stop', ['-n', name, '-k'])));

    const newcomers = Array.from({ length: 5 }, (_, index) => track(uniqueName(`race${index}`)));
    const raced = await Promise.all([
      ...names.map((name) => thinLxc(['destroy', name, '--root', root])),
      ...newcomers.map((name) => thinLxc(['create', name, '--base', base, '--root', root])),
    ]);
    for (const result of raced) assert.is(result.exitCode, 0, result.stderr);
    const after = JSON.parse((await thinLxc(['list', '--root', root, '--json'])).stdout) as { name: string }[];
    assert.equal(after.map((entry) => entry.name).filter((name) => name !== holder).sort(), [...newcomers].sort());
    assert.equal(readdirSync(root).filter((entry) => HALF_MADE.test(entry)), []);
    for (const name of names) assert.not.ok(existsSync(join(HOSTS_DIR, name)) || existsSync(join(LXCPATH, name)), name);
    for (const name of newcomers) assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  hardening('faults: iptables failing at start, a read-only write layer: the start stops, says why, leaves no rule or mount', async () => {
    const name = track(uniqueName('fault'));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${port + 1}:80`])).exitCode, 0);
    const dir = join(root, name);
    const fakeBin = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', fakeBin]));
    writeFileSync(join(fakeBin, 'iptables-restore'), '#!/bin/sh\necho "iptables-restore: simulated failure" >&2\nexit 1\n', { mode: 0o755 });
    // LXC hands hooks lxc-start's environment, so a failing iptables-restore first on its PATH is what the hook runs.
    const failed = await execa('lxc-start', ['-n', name, '-d'], { reject: false, env: { PATH: `${fakeBin}:${process.env.PATH}` } });
    assert.is.not(failed.exitCode, 0);
    assert.match(readFileSync(join(dir, 'hook.log'), 'utf8'), 'iptables-restore -w --noflush failed: iptables-restore: simulated failure');
    assert.equal(await rulesOf(tagOf(dir)), []);
    assert.equal(hostMountsMentioning(dir), []);
    assert.is((await sh('lxc-info', ['-n', name, '-s', '-H'])).stdout.trim(), 'STOPPED');

    const wlayer = join(dir, 'wlayer');
    await must('mount', ['--bind', wlayer, wlayer]);
    try {
      await must('mount', ['-o', 'remount,bind,ro', wlayer]);
      const readOnly = await sh('lxc-start', ['-n', name, '-d']);
      assert.is.not(readOnly.exitCode, 0);
      assert.match(readFileSync(join(dir, 'hook.log'), 'utf8'), `cannot mount the overlay union on ${join(dir, 'image/rootfs')}`);
      assert.equal(await rulesOf(tagOf(dir)), [], 'the pre-mount hook failed before any rule; post-stop had nothing to remove');
    } finally {
      await sh('umount', [wlayer]);
    }
    assert.equal(hostMountsMentioning(dir), []);
    assert.is((await startContainer(name)).exitCode, 0, 'with the faults gone it starts');
    await must('lxc-stop', ['-n', name]);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  hardening('an installation others could change is refused; configs and hooks are root-owned and not writable by others', async () => {
    const name = track(uniqueName('perm'));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root])).exitCode, 0);
    const config = statSync(join(root, name, 'image/config'));
    assert.is(config.uid, 0);
    assert.is(config.mode & 0o022, 0);
    const hook = join(CLI, '../../hooks/thin-lxc-mount.js');
    assert.is(statSync(hook).mode & 0o022, 0);
    const mode = statSync(hook).mode & 0o7777;
    try {
      chmodSync(hook, mode | 0o002);
      const refused = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', root]);
      assert.is(refused.exitCode, 2);
      assert.match(refused.stderr, `thin-lxc: ${hook} is writable by others, and thin-lxc's hooks run it as root: chown -R root:root`);
    } finally {
      chmodSync(hook, mode);
    }
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  hardening('a running base is warned about by create, list and doctor', async () => {
    const lonely = uniqueName('runbase');
    cleanup.add(() => removeLxcContainer(lonely));
    await must('lxc-create', ['-t', 'busybox', '-n', lonely], 120_000);
    const first = track(uniqueName('onrun'));
    assert.is((await thinLxc(['create', first, '--base', lonely, '--root', root])).exitCode, 0);
    assert.is((await startContainer(lonely)).exitCode, 0);
    const second = track(uniqueName('onrun2'));
    const created = await thinLxc(['create', second, '--base', lonely, '--root', root]);
    assert.is(created.exitCode, 0);
    assert.match(created.stderr, `thin-lxc: warning: base ${lonely} is running: its thin containers see its files change under them; stop it with lxc-stop -n ${lonely}`);
    assert.match((await thinLxc(['list', '--root', root])).stdout, `Warning: base ${lonely} is running`);
    const doctor = await thinLxc(['doctor', '--root', root]);
    assert.is(doctor.exitCode, 1);
    assert.match(doctor.stdout, `FAIL  bases in use       ${lonely} running while thin containers use them: lxc-stop -n ${lonely}`);
    await must('lxc-stop', ['-n', lonely, '-k']);
    for (const name of [first, second]) assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  hardening('nothing is left but the holder', async () => {
    assert.is((await thinLxc(['destroy', holder, '--root', root])).exitCode, 0);
    const state = await hostState();
    assert.equal(state.root, []);
    const left = state.reservations.filter((name) => name.replace(/^\./, '').startsWith(`tlt${process.pid.toString(36)}`));
    assert.equal(left, [], `no reservation of this run's, nor a half-written one: ${left.join(' ')}`);
  });
}

hardening.run();
