// End to end: a stop does only what it must. The iptables tools are wrapped first on the PATH that LXC hands its
// hooks: each wrapper notes which hook ran it, then runs the real tool, so the rules are real.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { LOCK_DIR } from '../../src/core/lock.js';
import { containerSuite, removeLxcContainer, startContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually } from '../helpers/locks.js';
import { markingPath } from '../helpers/marks.js';
import { giveSocat, request, rulesLeftAfterStop, rulesOf, startServers } from '../helpers/net.js';

const { tests: stops, runnable, cleanup, base, root } = await containerSuite('stops do only what they must', 'stopbase');

if (runnable) {
  let nextPort = 43_000 + Math.floor(Math.random() * 8_000);

  stops('an ephemeral container\'s stop removes its forwarding in ports-down; its ephemeral hook runs no iptables at all', async () => {
    const name = uniqueName('eph');
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--ephemeral', '-p', `${nextPort++}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const tag = tagOf(join(root, name));
    const marks = markingPath(['iptables', 'iptables-save', 'iptables-restore']);
    cleanup.add(() => rmSync(marks.dir, { recursive: true, force: true }));
    const started = await execa('lxc-start', ['-n', name, '-d'], { reject: false, env: marks.env });
    assert.is(started.exitCode, 0, String(started.stderr));
    await execa('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '20']);
    assert.ok((await rulesOf(tag)).some((line) => line.includes('DNAT')), 'its forwarding is installed');
    assert.is((await execa('lxc-stop', ['-n', name, '-k'], { reject: false, env: marks.env })).exitCode, 0);
    assert.ok(await eventually(() => !existsSync(join(root, name)), 30_000), 'the ephemeral hook removed it');
    assert.equal(await rulesOf(tag), [], 'none of its rules is left');
    assert.ok(marks.ran().some((line) => line.includes('thin-lxc-ports-down.js')), `ports-down removed its rules: ${marks.ran().join('; ')}`);
    assert.equal(marks.ran().filter((line) => line.includes('thin-lxc-ephemeral.js')), [], 'the ephemeral hook ran no iptables tool');
  });

  stops('a container whose forwarding nothing recorded (started by thin-lxc 0.2, or its record lost) has its rules removed at its stop; another unrecorded one keeps its own, recorded again', async () => {
    const made: { name: string; tag: string }[] = [];
    for (const label of ['nrec', 'nrek']) {
      const name = uniqueName(label);
      cleanup.add(() => removeLxcContainer(name));
      const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${nextPort++}:80`]);
      assert.is(created.exitCode, 0, created.stderr);
      const tag = tagOf(join(root, name));
      // Run first (cleanup runs in reverse): rules a failed stop left are recorded again, so that the destroy takes them.
      cleanup.add(async () => {
        if ((await rulesOf(tag)).length > 0) writeFileSync(record(tag), '');
      });
      made.push({ name, tag });
      assert.is((await startContainer(name)).exitCode, 0);
      assert.ok((await rulesOf(tag)).some((line) => line.includes('DNAT')), `${name}'s forwarding is installed`);
    }
    // What a start by thin-lxc 0.2, which kept no record, leaves: the rules, and nothing recorded.
    for (const { tag } of made) for (const dir of ['forwarding', 'forwarding6']) rmSync(join(LOCK_DIR, dir, tag), { force: true });
    const [stopped, running] = made as [{ name: string; tag: string }, { name: string; tag: string }];
    assert.is((await execa('lxc-stop', ['-n', stopped.name, '-k'], { reject: false })).exitCode, 0);
    assert.equal(await rulesLeftAfterStop(new RegExp(stopped.tag)), [], 'none of its rules is left in nat and filter');
    assert.not.ok(existsSync(record(stopped.tag)), 'nothing is recorded for it');
    assert.ok((await rulesOf(running.tag)).some((line) => line.includes('DNAT')), 'the other container keeps its forwarding');
    assert.ok(existsSync(record(running.tag)), 'the other container\'s forwarding is recorded again, as the live ruleset has it');
    assert.is((await execa('lxc-stop', ['-n', running.name, '-k'], { reject: false })).exitCode, 0);
    assert.equal(await rulesLeftAfterStop(new RegExp(running.tag)), [], 'and its stop removes them');
  });

  stops('update taking the last port of a running container whose forwarding nothing recorded (started by thin-lxc 0.2, or its record lost) removes its rules at once', async () => {
    const name = uniqueName('nrup');
    cleanup.add(() => removeLxcContainer(name));
    const port = nextPort++;
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${port}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const dir = join(root, name);
    giveSocat(dir);
    const tag = tagOf(dir);
    // Run first (cleanup runs in reverse): rules a failed update left are recorded again, so that the destroy takes them.
    cleanup.add(async () => {
      if ((await rulesOf(tag)).length > 0) writeFileSync(record(tag), '');
    });
    assert.is((await startContainer(name)).exitCode, 0);
    await startServers(name);
    assert.is(await request('127.0.0.1', port), `tcp-${name}`, 'its port answers');
    for (const dir of ['forwarding', 'forwarding6']) rmSync(join(LOCK_DIR, dir, tag), { force: true });
    const updated = await thinLxc(['update', name, '--root', root, '--unpublish', String(port)]);
    assert.is(updated.exitCode, 0, updated.stderr);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag), 0), [], 'none of its rules is left in nat and filter');
    assert.is(await request('127.0.0.1', port, { attempts: 1 }), '', 'its port no longer answers');
    assert.not.ok(existsSync(record(tag)), 'nothing is recorded for it');
  });
}

/** The file that records a tag's IPv4 forwarding (src/forward/apply.ts RECORD_DIRS). */
function record(tag: string): string {
  return join(LOCK_DIR, 'forwarding', tag);
}

stops.run();
