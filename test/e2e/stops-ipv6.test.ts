// End to end: a container that publishes only on IPv6 runs no IPv4 iptables tool at its start or its stop, and one
// whose record was lost has its rules removed on both families all the same. Gives
// lxcbr0 IPv6 (setup --ipv6) and puts lxc-net back as it was after: run it holding the e2e lock exclusively.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { LOCK_DIR } from '../../src/core/lock.js';
import { containerSuite, must, removeLxcContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { keepLxcNetAsItWas } from '../helpers/lxc-net.js';
import { markingPath } from '../helpers/marks.js';
import { rulesLeftAfterStop, rulesOf } from '../helpers/net.js';

const { tests: stops6, runnable, cleanup, base, root } = await containerSuite('stops of containers published on IPv6', 's6base');

/**
 * Starts a created container; its tag and record files. Its cleanup (run first: cleanups run in reverse) records
 * again the rules a failed test left unrecorded, so that the destroy takes them.
 */
async function startRecorded(name: string): Promise<{ tag: string; records: string[] }> {
  const tag = tagOf(join(root, name));
  const records = ['forwarding', 'forwarding6'].map((dir) => join(LOCK_DIR, dir, tag));
  cleanup.add(async () => {
    if ((await rulesOf(tag)).length > 0 || (await ip6RulesOf(tag)).length > 0) for (const record of records) writeFileSync(record, '');
  });
  assert.is((await execa('lxc-start', ['-n', name, '-d'], { reject: false })).exitCode, 0);
  await must('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '20']);
  return { tag, records };
}

if (runnable) {
  stops6.before(async () => {
    keepLxcNetAsItWas(cleanup);
    const setup = await thinLxc(['setup', '--ipv6']);
    assert.is(setup.exitCode, 0, setup.stderr);
  });

  stops6('a container published only on [::] installs and removes its ip6tables rules and runs no IPv4 iptables tool', async () => {
    const name = uniqueName('v6only');
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `[::]:${44_000 + Math.floor(Math.random() * 8_000)}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const tag = tagOf(join(root, name));
    const marks = markingPath(['iptables', 'iptables-save', 'iptables-restore', 'ip6tables-save', 'ip6tables-restore']);
    cleanup.add(() => rmSync(marks.dir, { recursive: true, force: true }));
    const started = await execa('lxc-start', ['-n', name, '-d'], { reject: false, env: marks.env });
    assert.is(started.exitCode, 0, String(started.stderr));
    await must('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '20']);
    assert.ok((await must('ip6tables-save', ['-t', 'nat'])).split('\n').some((line) => line.startsWith(`-A ${tag}-D `)), 'its IPv6 forwarding is installed');
    assert.is((await execa('lxc-stop', ['-n', name, '-k'], { reject: false, env: marks.env })).exitCode, 0);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag), 15_000, 'ip6tables-save'), [], 'its IPv6 rules are removed');
    const hooks = marks.ran().filter((line) => line.includes('thin-lxc-ports-'));
    assert.ok(hooks.some((line) => line.startsWith('ip6tables-restore') && line.includes('thin-lxc-ports-down.js')), `ports-down ran ip6tables: ${hooks.join('; ')}`);
    assert.equal(hooks.filter((line) => line.startsWith('iptables')), [], 'no IPv4 iptables tool ran in its hooks');
  });

  stops6('a container published on both families whose forwarding nothing recorded (its record lost) has its rules removed on both at its stop', async () => {
    const name = uniqueName('v6norec');
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${44_000 + Math.floor(Math.random() * 8_000)}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const { tag, records } = await startRecorded(name);
    assert.ok((await ip6RulesOf(tag)).some((line) => line.includes('DNAT')), 'its IPv6 forwarding is installed');
    assert.ok((await rulesOf(tag)).some((line) => line.includes('DNAT')), 'its IPv4 forwarding is installed');
    for (const record of records) rmSync(record);
    assert.is((await execa('lxc-stop', ['-n', name, '-k'], { reject: false })).exitCode, 0);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag), 15_000, 'ip6tables-save'), [], 'none of its IPv6 rules is left in nat and filter');
    assert.equal(await rulesLeftAfterStop(new RegExp(tag)), [], 'none of its IPv4 rules is left in nat and filter');
    assert.equal(records.filter((record) => existsSync(record)), [], 'nothing is recorded for it');
  });
}

if (runnable) {
  stops6('update taking the last IPv6 port of a running container whose forwarding nothing recorded (its record lost) removes its IPv6 rules at once and keeps its IPv4 ones', async () => {
    const name = uniqueName('v6upd');
    cleanup.add(() => removeLxcContainer(name));
    const [port4, port6] = [44_000 + Math.floor(Math.random() * 4_000), 48_000 + Math.floor(Math.random() * 4_000)];
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `0.0.0.0:${port4}:80`, '-p', `[::]:${port6}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const { tag, records } = await startRecorded(name);
    assert.ok((await ip6RulesOf(tag)).some((line) => line.includes('DNAT')), 'its IPv6 forwarding is installed');
    for (const record of records) rmSync(record);
    const updated = await thinLxc(['update', name, '--root', root, '--unpublish', String(port6)]);
    assert.is(updated.exitCode, 0, updated.stderr);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag), 0, 'ip6tables-save'), [], 'none of its IPv6 rules is left in nat and filter');
    assert.ok((await rulesOf(tag)).some((line) => line.includes(`--dport ${port4}`)), 'its IPv4 port is still forwarded');
    assert.is((await execa('lxc-stop', ['-n', name, '-k'], { reject: false })).exitCode, 0);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag)), [], 'and its stop removes its IPv4 rules');
  });
}

/** Lines of `ip6tables-save` that belong to a thin container's chains. */
async function ip6RulesOf(tag: string): Promise<string[]> {
  return (await must('ip6tables-save', [])).split('\n').filter((line) => line.includes(tag));
}

stops6.run();
