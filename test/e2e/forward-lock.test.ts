// Race review: two thin containers that install their forwarding at the same moment. Each iptables-restore
// --noflush is atomic, but the first container in reads the ruleset (iptables-save), works out what is missing and
// restores that: read-modify-write. The test holds the first start's iptables-save (its output already taken)
// until the second start is done or waits for the 'iptables' lock, then lets it go on.
// Both start in a network namespace of the test's own, with a bridge named like LXC's: its ruleset holds only this
// test's rules, and one shared chain left without its jumps (as a firewall tool that deleted them leaves it), so
// that the first start's quick script fails, whatever other containers the host runs, and it takes the long way.
// That long way records exactly the tags it finds, so both starts also run in a mount namespace of the test's own
// with a tmpfs on /run/thin-lxc: their record and their 'iptables' lock are the test's alone (the two starts still
// contend for that lock), and the host's record of every other container stays as it was.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { LOCK_DIR } from '../../src/core/lock.js';
import { readSaved, forwardingInPlace } from '../../src/forward/rules.js';
import { containerSuite, must, removeLxcContainer, sh, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually, waiterOf } from '../helpers/locks.js';

const { tests: race, runnable, cleanup, base, root } = await containerSuite('forwarding installed by two starts at once', 'flbase');

if (runnable) {
  const netns = `tlf${process.pid.toString(36)}`;
  /** A process that keeps the test's mount namespace (see the top), in the test's network namespace. */
  let namespaces: ReturnType<typeof execa> | undefined;
  /**
   * A tool in the test's network namespace (LXC's command sockets are abstract, one namespace's own), with the
   * namespace's own /sys, where the hooks find its veths, and in the test's mount namespace.
   */
  const inNs = (tool: string, args: readonly string[], env?: NodeJS.ProcessEnv) =>
    execa('nsenter', ['-t', String(namespaces!.pid), '-m', '-n', tool, ...args], { reject: false, timeout: 60_000, ...(env ? { env } : {}) });

  race.before(async () => {
    const bridge = (await must('ip', ['-4', '-o', 'addr', 'show', 'dev', 'lxcbr0'])).match(/inet (\S+)/)?.[1];
    assert.ok(bridge, 'lxcbr0 has an IPv4 address');
    await must('ip', ['netns', 'add', netns]);
    cleanup.add(() => sh('ip', ['netns', 'del', netns]));
    for (const args of [['link', 'set', 'lo', 'up'], ['link', 'add', 'lxcbr0', 'type', 'bridge'], ['addr', 'add', bridge!, 'dev', 'lxcbr0'], ['link', 'set', 'lxcbr0', 'up']]) {
      await must('ip', ['-n', netns, ...args]);
    }
    await must('ip', ['netns', 'exec', netns, 'iptables', '-w', '-t', 'nat', '-N', 'THIN-LXC-DNAT']);
    // ip netns exec gives the namespace's /sys in a mount namespace of its own; unshare makes one more, a slave of it
    // (mounts of the host still show), where the tmpfs hides the host's /run/thin-lxc. The containers' monitors, and
    // so their hooks at the stops in cleanup, stay in it after this process ends.
    namespaces = execa('ip', ['netns', 'exec', netns, 'unshare', '-m', '--propagation', 'slave', 'sh', '-c', `mount -t tmpfs -o mode=0700 tlf /run/thin-lxc && echo ready && exec cat >/dev/null`], { reject: false, stdin: 'pipe' });
    cleanup.add(async () => {
      namespaces!.stdin!.end();
      await namespaces;
    });
    await new Promise<void>((resolve, reject) => {
      namespaces!.stdout!.on('data', (data: Buffer) => (data.toString().includes('ready') ? resolve() : undefined));
      void namespaces!.then((result) => reject(new Error(`could not mount the test's /run/thin-lxc: ${String(result.stderr)}`)));
    });
  });

  race('a start that installs the shared chains while another start installs its own leaves both containers\' forwarding whole', async () => {
    const [first, second] = [uniqueName('fl1'), uniqueName('fl2')];
    // Another container's record on the host, which the starts' long way (which records exactly the tags it finds) must not see.
    const othersRecord = join(LOCK_DIR, 'forwarding', `TLXC-fl${process.pid.toString(36)}`);
    mkdirSync(dirname(othersRecord), { recursive: true, mode: 0o700 });
    writeFileSync(othersRecord, '');
    cleanup.add(() => rmSync(othersRecord, { force: true }));
    for (const name of [first, second]) {
      cleanup.add(() => removeLxcContainer(name));
      cleanup.add(() => inNs('lxc-stop', ['-n', name, '-k']));
      const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${45_000 + Math.floor(Math.random() * 8_000)}:80`]);
      assert.is(created.exitCode, 0, created.stderr);
    }
    // The first start's iptables-save: its output taken, then held until the test lets it go.
    const held = mkdtempSync('/tmp/thin-lxc-held-');
    cleanup.add(() => rmSync(held, { recursive: true, force: true }));
    await must('mkfifo', [join(held, 'go')]);
    writeFileSync(
      join(held, 'iptables-save'),
      `#!/bin/sh\nout=$(/usr/sbin/iptables-save "$@")\nif [ ! -e ${held}/held ]; then touch ${held}/held; timeout 60 cat ${held}/go >/dev/null; fi\nprintf '%s\\n' "$out"\n`,
      { mode: 0o755 },
    );
    const firstStart = inNs('lxc-start', ['-n', first, '-d', '-l', 'DEBUG', '-o', join(held, 'first.log')], { ...process.env, PATH: `${held}:${process.env.PATH}` });
    let secondStart;
    try {
      assert.ok(await eventually(() => existsSync(join(held, 'held')), 30_000), 'the first start read the ruleset and is held');
      secondStart = inNs('lxc-start', ['-n', second, '-d']);
      // LXC answers lxc-info only once a start's hooks are done: the second's rules are read from the namespace instead.
      const secondTag = tagOf(join(root, second));
      const secondInstalled = async () => (await inNs('iptables-save', ['-t', 'nat'])).stdout.includes(`-j ${secondTag}-D`);
      assert.ok(
        await eventually(async () => waiterOf('iptables', join(root, second)) !== undefined || (await secondInstalled()), 30_000),
        'the second start installed its forwarding, or waits for the iptables lock',
      );
    } finally {
      await sh('timeout', ['30', 'sh', '-c', `echo go > ${join(held, 'go')}`]);
    }
    assert.is((await firstStart).exitCode, 0, (await sh('grep', ['-E', 'thin-lxc|ERROR', join(held, 'first.log')])).stdout);
    assert.is((await secondStart!).exitCode, 0, String((await secondStart!).stderr));
    for (const name of [first, second]) assert.is((await inNs('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '20'])).exitCode, 0, `${name} runs`);
    const saved = readSaved((await inNs('iptables-save', [])).stdout);
    for (const name of [first, second]) assert.ok(forwardingInPlace(saved, tagOf(join(root, name))), `${name}'s forwarding is whole: its rules, its jumps, the base jumps`);
    const dnatJumps = [...saved.rules.entries()].filter(([key]) => key.startsWith('nat PREROUTING ') && key.endsWith('-j THIN-LXC-DNAT'));
    assert.equal(dnatJumps.map(([, count]) => count), [1], 'one jump from PREROUTING (the namespace holds only this test\'s rules)');
    // Where the starts recorded: the test's own /run/thin-lxc, which never shows the host's records. (Whether the
    // host's record survives is not asserted: any start on the host that takes the long way rightly drops a
    // record without rules, as this one is.)
    const recorded = (await inNs('ls', ['-A', join(LOCK_DIR, 'forwarding')])).stdout.split('\n');
    for (const name of [first, second]) {
      const tag = tagOf(join(root, name));
      assert.ok(recorded.includes(tag), `${name}'s forwarding is recorded in the test's own /run/thin-lxc`);
      assert.not.ok(existsSync(join(LOCK_DIR, 'forwarding', tag)), `${name}'s forwarding is not recorded in the host's /run/thin-lxc`);
    }
    assert.not.ok(recorded.includes(basename(othersRecord)), "the starts never saw the host's record of another container");
  });
}

race.run();
