// End to end: a stop does only what it must. The iptables tools are wrapped first on the PATH that LXC hands its
// hooks: each wrapper notes which hook ran it, then runs the real tool, so the rules are real.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerSuite, removeLxcContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually } from '../helpers/locks.js';
import { markingPath } from '../helpers/marks.js';
import { rulesOf } from '../helpers/net.js';

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
}

stops.run();
