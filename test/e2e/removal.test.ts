// Removal follows what was installed, not what the state says today: a running container whose state lost
// its ports (edited, or changed by a command that raced its start) still has its rules removed by its stop,
// by reload, and by destroy after a stop that ran no hook.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { readState, serializeState } from '../../src/state/state.js';
import { removeForwarding } from '../../src/forward/apply.js';
import { LOCK_DIR } from '../../src/core/lock.js';
import { containerSuite, must, removeLxcContainer, startContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { giveSocat, request, rulesLeftAfterStop, rulesOf, startServers } from '../helpers/net.js';

const { tests: removal, runnable, cleanup, base, root } = await containerSuite('removal follows what was installed', 'mbase');

if (runnable) {
  let nextPort = 34_000 + Math.floor(Math.random() * 7_000);
  const port = () => nextPort++;
  /** A running container forwarding one port, whose state then says it publishes nothing. */
  const runningWithLostPorts = async (label: string) => {
    const name = uniqueName(label);
    cleanup.add(() => removeLxcContainer(name));
    const hostPort = port();
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${hostPort}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const dir = join(root, name);
    giveSocat(dir);
    assert.is((await startContainer(name)).exitCode, 0);
    await startServers(name);
    assert.is(await request('127.0.0.1', hostPort), `tcp-${name}`, 'its port forwards');
    writeFileSync(join(dir, 'thin-lxc.ini'), serializeState({ ...readState(dir), publish: [] }));
    const tag = tagOf(dir);
    // What a failing test leaves of its own rules goes too.
    cleanup.add(() => removeForwarding(tag, { reconcile: true }));
    assert.ok((await rulesOf(tag)).length > 0, 'its rules are installed');
    return { name, tag, hostPort };
  };

  removal('its stop removes the rules its start installed, though its state no longer publishes them', async () => {
    const { name, tag } = await runningWithLostPorts('stop');
    await must('lxc-stop', ['-n', name, '-k']);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag)), [], 'no rule of it is left');
  });

  removal('reload removes the rules of a running container whose state publishes nothing', async () => {
    const { name, tag, hostPort } = await runningWithLostPorts('reload');
    const reloaded = await thinLxc(['reload', '--root', root]);
    assert.is(reloaded.exitCode, 0, reloaded.stderr);
    assert.equal(await rulesOf(tag), [], 'no rule of it is left');
    assert.is(await request('127.0.0.1', hostPort, { attempts: 1 }), '', 'its old port is closed');
    await must('lxc-stop', ['-n', name, '-k']);
  });

  removal('destroy after a stop that ran no hook (its monitor killed) removes the rules its start installed', async () => {
    const { name, tag } = await runningWithLostPorts('kill');
    await killMonitor(name);
    assert.ok((await rulesOf(tag)).length > 0, 'no hook ran: its rules are still there');
    const destroyed = await thinLxc(['destroy', name, '--root', root]);
    assert.is(destroyed.exitCode, 0, destroyed.stderr);
    assert.equal(await rulesOf(tag), [], 'destroy removed them');
  });

  removal('destroy after a stop that ran no hook removes the live rules of a container whose forwarding nothing recorded (started by thin-lxc 0.2, or its record lost)', async () => {
    const name = uniqueName('norec');
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${port()}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const tag = tagOf(join(root, name));
    // What a failing test leaves of its own rules goes too (nothing recorded: as seen installed).
    cleanup.add(() => removeForwarding(tag, { reconcile: true, installed: [4] }));
    assert.is((await startContainer(name)).exitCode, 0);
    assert.ok((await rulesOf(tag)).some((line) => line.includes('DNAT')), 'its rules are installed');
    // What a start by thin-lxc 0.2, which kept no record, leaves: the rules, and nothing recorded.
    for (const dir of ['forwarding', 'forwarding6']) rmSync(join(LOCK_DIR, dir, tag), { force: true });
    await killMonitor(name);
    assert.ok((await rulesOf(tag)).length > 0, 'no hook ran: its rules are still there');
    const destroyed = await thinLxc(['destroy', name, '--root', root]);
    assert.is(destroyed.exitCode, 0, destroyed.stderr);
    assert.equal(await rulesOf(tag), [], 'destroy removed them');
  });
}

/** SIGKILL to a container's own monitor (found by its exact title): LXC kills its init with it, and runs no hook. */
async function killMonitor(name: string): Promise<void> {
  const monitor = readdirSync('/proc').find((pid) => /^\d+$/.test(pid) && cmdline(pid) === `[lxc monitor] /var/lib/lxc ${name}`);
  assert.ok(monitor, 'found its monitor');
  process.kill(Number(monitor), 'SIGKILL');
  await must('lxc-wait', ['-n', name, '-s', 'STOPPED', '-t', '10']);
}

function cmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

removal.run();
