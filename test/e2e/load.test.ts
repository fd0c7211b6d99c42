// Load: 30 thin containers of one busybox base running at once, each publishing 2 ports. Every forward
// answers; stopping them all leaves no rule and no mount; the base is untouched.
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { Cleanup, containerSuite, hostMountsMentioning, must, removeLxcContainer, sh, startContainer, temporaryRoot, thinLxc, treeDigest, uniqueName } from '../helpers/host.js';
import { giveSocat, request, rulesLeftAfterStop, startServers } from '../helpers/net.js';

const { tests: load, runnable } = await containerSuite('30 thin containers with 2 published ports each');
const COUNT = 30;

if (runnable) {
  const cleanup = new Cleanup();
  const base = uniqueName('lbase');
  const root = temporaryRoot();
  const firstPort = 45_000 + Math.floor(Math.random() * 10_000);
  const names = Array.from({ length: COUNT }, (_, index) => uniqueName(`l${index}`));
  let digest = '';

  load.before(async () => {
    cleanup.add(() => sh('rm', ['-rf', root]));
    cleanup.add(() => removeLxcContainer(base));
    await must('lxc-create', ['-t', 'busybox', '-n', base], 120_000);
    digest = treeDigest(join('/var/lib/lxc', base));
    for (const name of names) cleanup.add(() => removeLxcContainer(name));
  });

  load.after(() => cleanup.run());

  load('all start, every forward answers, stopping all leaves nothing, the base is untouched', async () => {
    const started = performance.now();
    for (const [index, name] of names.entries()) {
      const ports = `${firstPort + 2 * index}:80,${firstPort + 2 * index + 1}:53/udp`;
      const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', ports]);
      assert.is(created.exitCode, 0, created.stderr);
      giveSocat(join(root, name));
    }
    for (const name of names) assert.is((await startContainer(name)).exitCode, 0, name);
    for (const name of names) await startServers(name);
    const running = (await must('lxc-ls', ['--running', '-1'])).split('\n');
    assert.ok(names.every((name) => running.includes(name)), 'all 30 running');

    for (const [index, name] of names.entries()) {
      assert.is(await request('127.0.0.1', firstPort + 2 * index), `tcp-${name}`);
      assert.is(await request('127.0.0.1', firstPort + 2 * index + 1, { udp: true }), `udp-${name}`);
    }
    const rules = (await must('iptables-save', ['-t', 'nat'])).split('\n').filter((line) => line.includes('-j DNAT') && line.includes('thin-lxc'));
    assert.is(rules.length, COUNT * 2, 'one DNAT rule per published port');

    await Promise.all(names.map((name) => must('lxc-stop', ['-n', name])));
    assert.equal(await rulesLeftAfterStop(/TLXC-|THIN-LXC/), [], 'no rule left in nat or filter');
    assert.equal(hostMountsMentioning(root), []);
    for (const name of names) assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
    assert.is(treeDigest(join('/var/lib/lxc', base)), digest);
    console.log(`  (30 containers created, started, checked on 60 ports, stopped and destroyed in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  });
}

load.run();
