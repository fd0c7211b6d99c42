// A host whose firewall lives a life: the planner's scripts applied for real in a fresh network namespace on
// both iptables backends, firewall flushes (iptables -F, -t nat -F, -t raw -F) followed by starts and reload,
// and a post-stop hook of the previous run held back until after the next start.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerRules, forwardingInPlace, guardScript, quickInstallScript, quickRemoveScript, readSaved, restoreScript, type ForwardTarget } from '../../src/forward/rules.js';
import { fixture } from '../helpers/paths.js';
import { parsePublish } from '../../src/core/validate.js';
import { containerSuite, must, removeLxcContainer, sh, startContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { giveSocat, request, rulesLeftAfterStop, rulesOf, startServers } from '../helpers/net.js';

const { tests: firewall, runnable, cleanup, base, root } = await containerSuite('a firewall that lives a life', 'fbase');

const target = (tag: string, address: string): ForwardTarget => ({ tag, name: tag, address, subnet: '10.0.3.0/24', ipv6: null, publish: ['8080:80', '5353:53/udp'].map(parsePublish) });

/** Runs `iptables-<backend>-restore --noflush` with `script` inside the namespace; its exit code. */
async function restoreIn(namespace: string, backend: string, script: string): Promise<number> {
  const result = await execa('ip', ['netns', 'exec', namespace, `iptables-${backend}-restore`, '--noflush'], { input: script, reject: false });
  return result.exitCode ?? -1;
}

if (runnable) {
  const port = 33_000 + Math.floor(Math.random() * 8_000);
  const make = async (name: string, hostPort: number) => {
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${hostPort}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    giveSocat(join(root, name));
    return { name, port: hostPort, tag: tagOf(join(root, name)) };
  };
  const start = async (made: { name: string }) => {
    assert.is((await startContainer(made.name)).exitCode, 0, made.name);
    await startServers(made.name);
  };
  const stop = async (made: { name: string; tag: string }) => {
    await must('lxc-stop', ['-n', made.name, '-k']);
    assert.equal(await rulesLeftAfterStop(new RegExp(made.tag)), [], `${made.name}'s post-stop removed its rules`);
  };

  firewall('golden: on an empty ruleset the planned script makes everything, and the quick script checks what it made (nft and legacy)', async () => {
    const namespace = `tlf${process.pid.toString(36)}`;
    for (const backend of ['nft', 'legacy']) {
      await sh('ip', ['netns', 'del', namespace]);
      await must('ip', ['netns', 'add', namespace]);
      try {
        // What the unit test proves the planner writes for web1 (TLXC-0000beef) on an empty ruleset.
        assert.is(await restoreIn(namespace, backend, readFileSync(fixture('forward-web1-empty.rules'), 'utf8')), 0, `${backend}: the golden script applies`);
        const saved = async () => readSaved(await must('ip', ['netns', 'exec', namespace, `iptables-${backend}-save`]));
        assert.ok(forwardingInPlace(await saved(), 'TLXC-0000beef'), `${backend}: its forwarding is in place`);

        const second = target('TLXC-1111cafe', '10.0.3.68');
        assert.is(await restoreIn(namespace, backend, quickInstallScript({ tag: second.tag, rules: containerRules(second) })), 0, `${backend}: quick install next to it`);
        assert.ok(forwardingInPlace(await saved(), second.tag));

        await must('ip', ['netns', 'exec', namespace, `iptables-${backend}`, '-t', 'nat', '-F']);
        assert.not.ok(forwardingInPlace(await saved(), 'TLXC-0000beef'), `${backend}: a flush breaks it`);
        const third = target('TLXC-2222d00d', '10.0.3.69');
        assert.is.not(await restoreIn(namespace, backend, quickInstallScript({ tag: third.tag, rules: containerRules(third) })), 0, `${backend}: the quick script is refused after a flush`);
        assert.not.ok((await saved()).tags.includes(third.tag), `${backend}: and changed nothing`);
      } finally {
        await sh('ip', ['netns', 'del', namespace]);
      }
    }
  });

  firewall("golden: the first-in script makes what a reconcile makes, and is refused where a shared chain is there; the last-out script is refused while another container's jump is in a shared chain, and the reconcile repairs (nft and legacy)", async () => {
    const namespace = `tlq${process.pid.toString(36)}`;
    const install = (planned: ForwardTarget) => ({ tag: planned.tag, rules: containerRules(planned) });
    const first = target('TLXC-3333aaaa', '10.0.3.70');
    const other = target('TLXC-4444bbbb', '10.0.3.71');
    for (const backend of ['nft', 'legacy']) {
      await sh('ip', ['netns', 'del', namespace]);
      await must('ip', ['netns', 'add', namespace]);
      try {
        const save = (...table: string[]) => must('ip', ['netns', 'exec', namespace, `iptables-${backend}-save`, ...table]);
        const saved = async () => readSaved(await save());
        const tables = async () => ({ nat: ruleLines(await save('-t', 'nat')), filter: ruleLines(await save('-t', 'filter')) });
        const quickFirst = quickInstallScript(install(first), 4, { first: true });

        // A ruleset without the localhost guard refuses it too (the guard is checked, never made here).
        assert.is.not(await restoreIn(namespace, backend, quickFirst), 0, `${backend}: the first-in script is refused without the guard`);
        assert.equal((await saved()).tags, [], `${backend}: and changed nothing`);
        assert.is(await restoreIn(namespace, backend, guardScript(await saved())), 0, `${backend}: the guard goes in`);
        const empty = await tables();
        assert.is(await restoreIn(namespace, backend, quickFirst), 0, `${backend}: the first-in script applies on a ruleset with no forwarding`);
        assert.ok(forwardingInPlace(await saved(), first.tag), `${backend}: its forwarding is in place`);
        const made = await tables();
        assert.is(await restoreIn(namespace, backend, quickRemoveScript(first.tag, { last: true })), 0, `${backend}: the last-out script applies when it is alone`);
        assert.equal(await tables(), empty, `${backend}: and leaves nat and filter as they were before it`);
        assert.is(await restoreIn(namespace, backend, restoreScript(await saved(), { install: install(first) })), 0, `${backend}: the reconcile applies`);
        assert.equal(await tables(), made, `${backend}: the first-in script made what the reconcile makes`);

        // Another container's shared chains are there (nothing recorded them): -N refuses, and the caller reconciles.
        const before = await tables();
        assert.is.not(await restoreIn(namespace, backend, quickInstallScript(install(other), 4, { first: true })), 0, `${backend}: the first-in script is refused where a shared chain is there`);
        assert.equal(await tables(), before, `${backend}: and changed nothing`);
        assert.is(await restoreIn(namespace, backend, restoreScript(await saved(), { install: install(other) })), 0, `${backend}: the reconcile it falls back to applies`);
        assert.ok(forwardingInPlace(await saved(), first.tag) && forwardingInPlace(await saved(), other.tag), `${backend}: both forward`);

        // The last one out by the record, while another container's jump is in the shared chains.
        const both = await tables();
        assert.is.not(await restoreIn(namespace, backend, quickRemoveScript(first.tag, { last: true })), 0, `${backend}: the last-out script is refused`);
        const after = await tables();
        for (const table of ['nat', 'filter'] as const) {
          assert.ok(
            JSON.stringify(after[table]) === JSON.stringify(both[table]) || !after[table].some((line) => line.includes(first.tag)),
            `${backend}: ${table} is unchanged, or without the first container's rules: ${after[table].join('; ')}`,
          );
        }
        assert.ok(forwardingInPlace(await saved(), other.tag), `${backend}: the other container still forwards`);
        assert.is(await restoreIn(namespace, backend, restoreScript(await saved(), { remove: first.tag })), 0, `${backend}: the reconcile applies`);
        const repaired = await tables();
        assert.equal([...repaired.nat, ...repaired.filter].filter((line) => line.includes(first.tag)), [], `${backend}: none of the first container's rules is left`);
        assert.ok(forwardingInPlace(await saved(), other.tag), `${backend}: the other container forwards`);

        // The other container's jump only in filter (its stop failed halfway): nat may commit, filter is refused.
        const [d, s] = [`${other.tag}-D`, `${other.tag}-S`];
        assert.is(await restoreIn(namespace, backend, `*nat\n-D THIN-LXC-DNAT -j ${d}\n-D THIN-LXC-SNAT -j ${s}\n:${d} - [0:0]\n-X ${d}\n:${s} - [0:0]\n-X ${s}\nCOMMIT\n`), 0);
        assert.is(await restoreIn(namespace, backend, restoreScript(await saved(), { install: install(first) })), 0, `${backend}: the first container forwards again`);
        const half = await tables();
        assert.is.not(await restoreIn(namespace, backend, quickRemoveScript(first.tag, { last: true })), 0, `${backend}: the last-out script is refused by filter`);
        const left = await tables();
        for (const table of ['nat', 'filter'] as const) {
          assert.ok(
            JSON.stringify(left[table]) === JSON.stringify(half[table]) || !left[table].some((line) => line.includes(first.tag)),
            `${backend}: ${table} is unchanged, or without the first container's rules: ${left[table].join('; ')}`,
          );
        }
        assert.is(await restoreIn(namespace, backend, restoreScript(await saved(), { remove: first.tag })), 0, `${backend}: the reconcile applies`);
        const cleaned = await tables();
        assert.equal([...cleaned.nat, ...cleaned.filter].filter((line) => line.includes(first.tag)), [], `${backend}: none of the first container's rules is left`);
        assert.equal(cleaned.nat.filter((line) => line.includes('THIN-LXC')), [], `${backend}: nor the shared nat chains, which nobody uses`);
      } finally {
        await sh('ip', ['netns', 'del', namespace]);
      }
    }
  });

  firewall('after iptables -F, -t nat -F or -t raw -F the next start forwards, and reload restores the others', async () => {
    const ruleset = await must('iptables-save', []);
    try {
      const a = await make(uniqueName('fa'), port);
      const b = await make(uniqueName('fb'), port + 1);
      await start(a);
      for (const flush of [['-F'], ['-t', 'nat', '-F'], ['-t', 'raw', '-F']]) {
        await must('iptables', flush);
        await start(b);
        assert.is(await request('127.0.0.1', b.port), `tcp-${b.name}`, `after iptables ${flush.join(' ')} the next start forwards`);
        assert.match(await must('iptables', ['-t', 'raw', '-S', 'PREROUTING']), '-j THIN-LXC-GUARD', 'and the localhost guard is back');
        const reloaded = await thinLxc(['reload', '--root', root]);
        assert.is(reloaded.exitCode, 0, reloaded.stderr);
        assert.is(await request('127.0.0.1', a.port), `tcp-${a.name}`, `after iptables ${flush.join(' ')} reload restores a running container`);
        const doctor = await thinLxc(['doctor', '--root', root]);
        assert.match(doctor.stdout, 'ok    forwarding         in place for', 'doctor finds nothing missing');
        await stop(b);
        assert.is(await request('127.0.0.1', a.port), `tcp-${a.name}`, "b's stop leaves a's forwarding");
      }
      await stop(a);
    } finally {
      // Put back what the host had (lxc-net's own rules among them), whatever happened above.
      await execa('iptables-restore', [], { input: ruleset, reject: false });
    }
  });

  firewall("a post-stop of the previous run, held back until after the next start, leaves the new start's forwarding alone", async () => {
    const made = await make(uniqueName('fgen'), port + 2);
    const log = join(root, `${made.name}.lxc.log`);
    // LXC reports STOPPED, then runs post-stop: catch that hook the moment it exists, before it takes the
    // iptables lock (a stopped process waiting for a flock would still be handed the lock), and hold it there.
    let stopping: Promise<unknown> = Promise.resolve();
    let held: string | undefined;
    for (let attempt = 1; !held; attempt++) {
      assert.ok(attempt <= 5, 'caught a post-stop hook before it took the lock within 5 tries');
      await stopping;
      assert.is((await startContainer(made.name, ['-l', 'DEBUG', '-o', log])).exitCode, 0);
      const generation = (await must('lxc-info', ['-n', made.name, '-p', '-H'])).trim();
      const monitor = monitorOf(made.name);
      stopping = sh('lxc-stop', ['-n', made.name, '-k']);
      let hook: string | undefined;
      for (const deadline = Date.now() + 15_000; !hook && Date.now() < deadline; ) hook = childrenOf(monitor).find((pid) => cmdline(pid).some((arg) => arg.endsWith('thin-lxc-ports-down.js')));
      assert.ok(hook, 'the post-stop hook ran');
      process.kill(Number(hook), 'SIGSTOP');
      const untouched = childrenOf(hook!).length === 0 && readFileSync(join('/run/thin-lxc/forwarding', made.tag), 'utf8').trim() === generation;
      if (untouched) held = hook;
      else process.kill(Number(hook), 'SIGCONT');
    }
    cleanup.add(() => sh('kill', ['-CONT', held!]));

    const log2 = join(root, `${made.name}.lxc2.log`);
    const restarted = await startContainer(made.name, ['-l', 'DEBUG', '-o', log2]);
    const story = async () =>
      [`lxc-start: ${restarted.stderr}`, ...readFileSync(log2, 'utf8').split('\n').filter((line) => /thin-lxc|ERROR/.test(line)), ...(await rulesOf(made.tag))].join('\n');
    assert.is(restarted.exitCode, 0, await story());
    await startServers(made.name);
    assert.is(await request('127.0.0.1', made.port), `tcp-${made.name}`, `the next start forwards\n${await story()}`);
    const installed = await rulesOf(made.tag);

    process.kill(Number(held), 'SIGCONT');
    await stopping; // lxc-stop returns once the old monitor is done, its post-stop included
    assert.match(readFileSync(log, 'utf8'), `forwarding of ${made.name} belongs to a newer start`, 'the late post-stop saw a newer start');
    assert.equal(await rulesOf(made.tag), installed, 'and left its rules');
    assert.is(await request('127.0.0.1', made.port), `tcp-${made.name}`, 'forwarding still works');
    await stop(made);
  });
}

/** A table's chains and rules as iptables-save prints them, without counters or comments. */
function ruleLines(save: string): string[] {
  return save
    .split('\n')
    .filter((line) => line.startsWith(':') || line.startsWith('-A '))
    .map((line) => line.replace(/ \[\d+:\d+\]$/, ''));
}

function cmdline(pid: string): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function childrenOf(pid: string): string[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/** The LXC monitor of a running container: the process that runs its start-host and post-stop hooks. */
function monitorOf(name: string): string {
  const pid = readdirSync('/proc').find((entry) => /^\d+$/.test(entry) && cmdline(entry).join(' ').startsWith(`[lxc monitor] /var/lib/lxc ${name}`));
  if (!pid) throw new Error(`no LXC monitor for ${name}`);
  return pid;
}

firewall.run();
