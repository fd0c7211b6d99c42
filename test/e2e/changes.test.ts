// End to end for changing containers: thin-lxc update (ports at once and atomically, mounts and autostart at
// the next start, limits), resource limits as the host's cgroup version has them, and idempotent runs for
// configuration management (the same create unchanged, --replace, --json changed, --dry-run as check mode).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { readState } from '../../src/state/state.js';
import { hostCgroupVersion } from '../../src/lxc/limits.js';
import { attach, containerSuite, must, removeLxcContainer, sh, startContainer, tagOf, temporaryRoot, thinLxc, uniqueName } from '../helpers/host.js';
import { giveSocat, request, rulesLeftAfterStop, rulesOf, startServers } from '../helpers/net.js';
import { CLI } from '../helpers/paths.js';

/** Whether a process runs: it exists and has not exited (a zombie has, and only waits to be reaped). */
function processRuns(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const { tests: changes, runnable, cleanup, base, root } = await containerSuite('changing containers and idempotent runs with real LXC', 'cbase');

if (runnable) {
  const host = temporaryRoot();
  let nextPort = 41_000 + Math.floor(Math.random() * 8_000);
  const port = () => nextPort++;
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  const json = (text: string) => JSON.parse(text) as Record<string, unknown>;
  const stateFile = (name: string) => readFileSync(join(root, name, 'thin-lxc.ini'), 'utf8');
  const configFile = (name: string) => readFileSync(join(root, name, 'image', 'config'), 'utf8');

  changes.before(() => {
    cleanup.add(() => sh('rm', ['-rf', host]));
    mkdirSync(join(host, 'data'));
    writeFileSync(join(host, 'data', 'hello.txt'), 'from the host\n');
  });

  changes('update on a running container moves a published port at once: never both rules missing, the old port dead, nothing left at stop', async () => {
    const name = track(uniqueName('upd'));
    const [oldPort, newPort] = [port(), port()];
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${oldPort}:80`])).exitCode, 0);
    const tag = tagOf(join(root, name));
    giveSocat(join(root, name));
    assert.is((await startContainer(name)).exitCode, 0);
    await startServers(name);
    assert.is(await request('127.0.0.1', oldPort), `tcp-${name}`);

    // Sample the container's own lines of nat and filter while the update runs: each sample must hold a DNAT rule
    // (the old port's or the new one's) with its jump, and the filter rule that lets the forwarded traffic through.
    const updateStarted = performance.now();
    const update = execa(process.execPath, [CLI, 'update', name, '--root', root, '--unpublish', String(oldPort), '-p', `${newPort}:80`], { reject: false });
    let running = true;
    void update.finally(() => (running = false));
    const own = (table: string) => async () => (await must('iptables-save', ['-t', table])).split('\n').filter((line) => line.includes(tag));
    const samples: { started: number; during: boolean; nat: string[]; filter: string[] }[] = [];
    const deadline = Date.now() + 20_000;
    while (running && Date.now() < deadline) {
      const started = performance.now();
      const [nat, filter] = [await own('nat')(), await own('filter')()];
      // The update still ran when this sample was complete: its process is there and not a zombie.
      samples.push({ started, during: processRuns(update.pid!), nat, filter });
    }
    const result = await update;
    assert.is(result.exitCode, 0, String(result.stderr));
    assert.match(String(result.stdout), `ports: ${newPort}:80/tcp (in effect now)`);
    const whileItRan = samples.filter((sample) => sample.started >= updateStarted && sample.during);
    assert.ok(whileItRan.length > 0, `a sample started after the update started and was complete before it exited (${samples.length} samples)`);
    const dnat = (lines: string[]) =>
      lines.includes(`-A THIN-LXC-DNAT -j ${tag}-D`) && lines.some((line) => line.startsWith(`-A ${tag}-D `) && /--dport (\d+) .*-j DNAT/.test(line));
    const forward = (lines: string[]) =>
      lines.includes(`-A THIN-LXC-FWD -j ${tag}-F`) && lines.some((line) => line.startsWith(`-A ${tag}-F `) && line.includes('--dport 80 ') && line.endsWith('-j ACCEPT'));
    assert.equal(samples.filter((sample) => !dnat(sample.nat)), [], 'no sample without its DNAT rule (and the jump to its chain)');
    assert.equal(samples.filter((sample) => !forward(sample.filter)), [], 'no sample without its filter FWD rule (and the jump to its chain)');
    const ports = new Set(samples.flatMap((sample) => sample.nat.flatMap((line) => /-j DNAT/.test(line) ? [/--dport (\d+)/.exec(line)?.[1]] : [])));
    process.stdout.write(`  [atomicity] ${samples.length} samples, ${whileItRan.length} while the update ran; DNAT ports seen: ${[...ports].join(', ')}\n`);

    assert.is(await request('127.0.0.1', newPort), `tcp-${name}`);
    assert.is(await request('127.0.0.1', oldPort, { attempts: 1 }), '', 'the old port no longer answers');
    const rules = (await rulesOf(tag)).join('\n');
    assert.match(rules, `--dport ${newPort}`);
    assert.not.match(rules, `--dport ${oldPort}`);
    await must('lxc-stop', ['-n', name]);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag)), []);
  });

  changes('update gives ports to a running container made without any; its stop removes them; conflicts are refused and change nothing', async () => {
    const name = track(uniqueName('add'));
    const other = track(uniqueName('oth'));
    const [mine, theirs] = [port(), port()];
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root])).exitCode, 0);
    assert.is((await thinLxc(['create', other, '--base', base, '--root', root, '-p', `${theirs}:80`])).exitCode, 0);
    const tag = tagOf(join(root, name));
    giveSocat(join(root, name));
    assert.is((await startContainer(name)).exitCode, 0);
    await startServers(name);
    const updated = await thinLxc(['update', name, '--root', root, '-p', `${mine}:80`]);
    assert.is(updated.exitCode, 0, updated.stderr);
    assert.is(await request('127.0.0.1', mine), `tcp-${name}`);

    const [state, config] = [stateFile(name), configFile(name)];
    const taken = await thinLxc(['update', name, '--root', root, '-p', `${theirs}:80`]);
    assert.is(taken.exitCode, 2);
    assert.is(taken.stderr.trim(), `thin-lxc: host port of ${theirs}:80/tcp is already published by thin container ${other} (${theirs}:80/tcp): choose another host port`);
    const unknown = await thinLxc(['update', name, '--root', root, '--unpublish', '1']);
    assert.is(unknown.stderr.trim(), `thin-lxc: ${name} does not publish "1": it publishes ${mine}:80/tcp`);
    assert.equal([stateFile(name), configFile(name)], [state, config], 'a refused update changes nothing');

    await must('lxc-stop', ['-n', name]);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag)), [], 'the post-stop hook every container has removes them');
  });

  changes('update: a mount and autostart apply from the next start and it says so; --dry-run changes nothing; --json reports changed', async () => {
    const name = track(uniqueName('mnt'));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root])).exitCode, 0);
    assert.is((await startContainer(name)).exitCode, 0);
    const [state, config] = [stateFile(name), configFile(name)];
    const dry = await thinLxc(['update', name, '--root', root, '-m', `${join(host, 'data')}:/data`, '--autostart', '--dry-run', '--json']);
    assert.is(dry.exitCode, 0, dry.stderr);
    assert.is(json(dry.stdout).changed, true);
    assert.equal([stateFile(name), configFile(name)], [state, config], '--dry-run writes nothing');

    const updated = await thinLxc(['update', name, '--root', root, '-m', `${join(host, 'data')}:/data`, '--autostart']);
    assert.is(updated.exitCode, 0, updated.stderr);
    assert.match(updated.stdout, `Note: mount changes take effect at ${name}'s next start`);
    assert.match(configFile(name), '\nlxc.start.auto = 1\n');
    assert.is((await sh('lxc-attach', ['-n', name, '--', 'cat', '/data/hello.txt'])).exitCode, 1, 'not yet mounted while it runs');
    await must('lxc-stop', ['-n', name]);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await attach(name, 'cat /data/hello.txt'), 'from the host');
    // lxc-ls reads a running container's settings from LXC, which has them from this start's config.
    assert.match(await must('lxc-ls', ['-f', '-F', 'NAME,AUTOSTART']), new RegExp(`${name}\\s+1`));

    const again = await thinLxc(['update', name, '--root', root, '-m', `${join(host, 'data')}:/data`, '--autostart', '--json']);
    assert.equal([json(again.stdout).changed, json(again.stdout).action], [false, 'unchanged']);
    const off = await thinLxc(['update', name, '--root', root, '--unmount', '/data', '--no-autostart', '--json']);
    assert.is(json(off.stdout).changed, true);
    assert.not.match(configFile(name), /lxc\.start\.auto|hello|\/data/);
    assert.not.match(configFile(name), /# Bind mounts \(thin-lxc update\)\.|# Autostart/, 'no heading is left without its lines');
    await must('lxc-stop', ['-n', name]);
  });

  changes("--memory and --cpus are the host's cgroup version's lines, in force inside the container, and update changes them at once", async () => {
    const name = track(uniqueName('lim'));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--memory', '256M', '--cpus', '0.5']);
    assert.is(created.exitCode, 0, created.stderr);
    const v2 = hostCgroupVersion() === 2;
    assert.match(configFile(name), v2 ? 'lxc.cgroup2.memory.max = 268435456\nlxc.cgroup2.cpu.max = 50000 100000' : 'lxc.cgroup.memory.limit_in_bytes = 268435456\nlxc.cgroup.cpu.cfs_period_us = 100000\nlxc.cgroup.cpu.cfs_quota_us = 50000');
    assert.is((await startContainer(name)).exitCode, 0);
    // The container's own view: its cgroup namespace makes its cgroup the root of what it mounts.
    const inside = () =>
      attach(
        name,
        v2
          ? 'mkdir -p /tmp/cg && mount -t cgroup2 none /tmp/cg && cat /tmp/cg/memory.max /tmp/cg/cpu.max; umount /tmp/cg'
          : 'mkdir -p /tmp/m /tmp/c && mount -t cgroup -o memory none /tmp/m && mount -t cgroup -o cpu none /tmp/c && ' +
              'cat /tmp/m/memory.limit_in_bytes /tmp/c/cpu.cfs_quota_us; umount /tmp/m /tmp/c',
      );
    assert.is(await inside(), v2 ? '268435456\n50000 100000' : '268435456\n50000');

    const updated = await thinLxc(['update', name, '--root', root, '--memory', '128M', '--cpus', '1']);
    assert.is(updated.exitCode, 0, updated.stderr);
    assert.is(await inside(), v2 ? '134217728\n100000 100000' : '134217728\n100000', 'in force at once');
    assert.is((await thinLxc(['update', name, '--root', root, '--memory', 'none', '--cpus', 'none'])).exitCode, 0);
    assert.is(await inside(), v2 ? 'max\nmax 100000' : '9223372036854771712\n-1', 'lifted at once');
    await must('lxc-stop', ['-n', name]);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await inside(), v2 ? 'max\nmax 100000' : '9223372036854771712\n-1', 'and from the next start');
    await must('lxc-stop', ['-n', name]);

    const before = readdirSync(root).sort();
    for (const [flag, value, message] of [
      ['--memory', '1K', 'memory "1K" is too small to run a container: give at least 8M'],
      ['--memory', '12X', 'memory "12X" is not a size: write it like 512M or 2G'],
      ['--cpus', '0', 'cpus "0" is not a CPU count this host has'],
      ['--cpus', '1;reboot', 'cpus "1;reboot" is not a CPU count this host has'],
    ] as const) {
      const refused = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', root, flag, value]);
      assert.is(refused.exitCode, 2, `${flag} ${value}`);
      assert.match(refused.stderr, `thin-lxc: ${message}`);
    }
    assert.equal(readdirSync(root).sort(), before, 'a refused create leaves nothing');
  });

  changes('idempotent create: the same command is unchanged, another spec is refused naming it, --replace re-creates; --json and --dry-run say changed', async () => {
    const name = track(uniqueName('idem'));
    const hostPort = port();
    const args = ['create', name, '--base', base, '--root', root, '-p', `${hostPort}:80`, '--memory', '256M', '--json'];
    const first = await thinLxc(args);
    assert.is(first.exitCode, 0, first.stderr);
    assert.equal([json(first.stdout).changed, json(first.stdout).action], [true, 'created']);
    const created = json(first.stdout);

    const again = await thinLxc(args);
    assert.is(again.exitCode, 0, again.stderr);
    assert.equal([json(again.stdout).changed, json(again.stdout).action], [false, 'unchanged']);
    assert.is(json(again.stdout).ip, created.ip);
    const plain = await thinLxc(args.filter((arg) => arg !== '--json'));
    assert.is(plain.stdout.trim(), `Thin container ${name} is unchanged: it exists with this spec.`);
    const check = await thinLxc([...args, '--dry-run']);
    assert.equal([json(check.stdout).changed, json(check.stdout).action], [false, 'unchanged']);

    const other = args.map((arg) => (arg === '256M' ? '512M' : arg));
    const state = stateFile(name);
    const refused = await thinLxc(other);
    assert.is(refused.exitCode, 2);
    assert.is(
      refused.stderr.trim(),
      `thin-lxc: thin container ${name} exists with another spec (memory is 268435456, asked 536870912): pass --replace to destroy and re-create it, or use thin-lxc update`,
    );
    const wouldReplace = await thinLxc([...other, '--replace', '--dry-run']);
    assert.equal([json(wouldReplace.stdout).changed, json(wouldReplace.stdout).action], [true, 'replace']);
    assert.is(stateFile(name), state, 'neither the refusal nor the check changed anything');

    assert.is((await startContainer(name)).exitCode, 0);
    const replaced = await thinLxc([...other, '--replace']);
    assert.is(replaced.exitCode, 0, replaced.stderr);
    assert.equal([json(replaced.stdout).changed, json(replaced.stdout).action, json(replaced.stdout).memory], [true, 'replaced', '536870912']);
    assert.is((await must('lxc-info', ['-n', name, '-s', '-H'])).trim(), 'STOPPED', 'the running one was stopped and replaced');

    const destroyed = await thinLxc(['destroy', name, '--root', root, '--force', '--json']);
    assert.equal([json(destroyed.stdout).changed, json(destroyed.stdout).action], [true, 'destroyed']);
    const absent = await thinLxc(['destroy', name, '--root', root, '--force', '--json']);
    assert.is(absent.exitCode, 0);
    assert.equal([json(absent.stdout).changed, json(absent.stdout).action], [false, 'absent']);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 2, 'without --force a missing container is an error');
    assert.not.ok(existsSync(join(root, name)));
  });

  changes('a host port a thin container of another root publishes is refused to create and update in this root, naming it', async () => {
    const elsewhere = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', elsewhere]));
    const [theirs, mine, refused] = [track(uniqueName('ort')), track(uniqueName('mrt')), track(uniqueName('nrt'))];
    const contested = port();
    assert.is((await thinLxc(['create', theirs, '--base', base, '--root', elsewhere, '-p', `${contested}:80`])).exitCode, 0);
    const message = `thin-lxc: host port of ${contested}:80/tcp is already published by thin container ${theirs} (${contested}:80/tcp): choose another host port`;
    const created = await thinLxc(['create', refused, '--base', base, '--root', root, '-p', `${contested}:80`]);
    assert.is(created.stderr.trim(), message);
    assert.is(created.exitCode, 2);
    assert.not.ok(existsSync(join(root, refused)), 'the refused create made nothing');
    assert.is((await thinLxc(['create', mine, '--base', base, '--root', root])).exitCode, 0);
    const updated = await thinLxc(['update', mine, '--root', root, '-p', `${contested}:80`]);
    assert.is(updated.stderr.trim(), message);
    assert.is(updated.exitCode, 2);
    assert.equal(readState(join(root, mine)).publish, [], 'the refused update changed nothing');
    assert.is((await thinLxc(['destroy', mine, '--root', root])).exitCode, 0);
    assert.is((await thinLxc(['destroy', theirs, '--root', elsewhere])).exitCode, 0);
  });

  changes('idempotent create: a relative -m run from another directory is the same spec when it names the same host path, another when not', async () => {
    const name = track(uniqueName('rel'));
    for (const dir of ['a/data', 'a/sub', 'b/data']) mkdirSync(join(host, dir), { recursive: true });
    const create = (mount: string, cwd: string) => thinLxc(['create', name, '--base', base, '--root', root, '-m', `${mount}:/data`, '--json'], { cwd });
    const first = await create('data', join(host, 'a'));
    assert.is(first.exitCode, 0, first.stderr);
    assert.equal(readState(join(root, name)).mounts, [`${join(host, 'a/data')}:/data`], 'the state holds the absolute host path');
    const same = await create('../data', join(host, 'a/sub'));
    assert.is(same.exitCode, 0, same.stderr);
    assert.is(json(same.stdout).action, 'unchanged', 'the same host path from another directory is the same spec');
    const other = await create('data', join(host, 'b'));
    assert.is(other.exitCode, 2);
    assert.is(
      other.stderr.trim(),
      `thin-lxc: thin container ${name} exists with another spec (mount is ${join(host, 'a/data')}:/data, asked ${join(host, 'b/data')}:/data): pass --replace to destroy and re-create it, or use thin-lxc update`,
    );
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });
}

changes.run();
