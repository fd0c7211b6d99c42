// A boot storm: 40 thin containers with 2 published ports each, all --autostart, brought up by lxc-autostart
// (what the host runs at boot) at once. All come up, no hook times out on the lock, every forward answers;
// stopping them all leaves no rule and no mount; the base is untouched.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { containerSuite, hostMountsMentioning, must, removeLxcContainer, tagOf, thinLxc, treeDigest, uniqueName } from '../helpers/host.js';
import { giveSocat, request, rulesLeftAfterStop, startServers } from '../helpers/net.js';

const { tests: storm, runnable, cleanup, base, root } = await containerSuite('a boot storm: 40 thin containers with 2 published ports each, started by lxc-autostart', 'sbase');
const COUNT = 40;

if (runnable) {
  const group = uniqueName('storm').replace(/[^a-z0-9]/g, '');
  const firstPort = 50_000 + Math.floor(Math.random() * 10_000);
  const names = Array.from({ length: COUNT }, (_, index) => uniqueName(`s${index}`));
  let digest = '';

  storm.before(async () => {
    digest = treeDigest(join('/var/lib/lxc', base));
    for (const name of names) cleanup.add(() => removeLxcContainer(name));
  });

  storm('lxc-autostart brings all 40 up, no hook fails or times out, every forward answers; stopping all leaves nothing', async () => {
    // Their own lxc.group, so that lxc-autostart starts these and nobody else's containers on this host.
    const template = join(root, 'grouped.hbs');
    writeFileSync(template, `${(await thinLxc(['template'])).stdout}\nlxc.group = ${group}\n`);
    for (const [index, name] of names.entries()) {
      const ports = `${firstPort + 2 * index}:80,${firstPort + 2 * index + 1}:53/udp`;
      const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', ports, '--autostart', '--template', template]);
      assert.is(created.exitCode, 0, created.stderr);
      giveSocat(join(root, name));
    }
    const started = performance.now();
    await must('lxc-autostart', ['-g', group], 300_000);
    const took = performance.now() - started;
    const running = (await must('lxc-ls', ['--running', '-1'])).split('\n');
    assert.equal(names.filter((name) => !running.includes(name)), [], 'all 40 running');
    const failed = names.filter((name) => existsSync(join(root, name, 'hook.log')));
    assert.equal(failed, [], `no hook failed: ${failed.map((name) => readFileSync(join(root, name, 'hook.log'), 'utf8')).join(' ')}`);

    for (const name of names) await startServers(name);
    for (const [index, name] of names.entries()) {
      assert.is(await request('127.0.0.1', firstPort + 2 * index), `tcp-${name}`);
      assert.is(await request('127.0.0.1', firstPort + 2 * index + 1, { udp: true }), `udp-${name}`);
    }
    // Only this test's rules: a user's own thin containers on this host have theirs.
    const tags = names.map((name) => tagOf(join(root, name)));
    const own = new RegExp(tags.join('|'));
    const dnat = (await must('iptables-save', ['-t', 'nat'])).split('\n').filter((line) => line.includes('-j DNAT') && own.test(line));
    assert.is(dnat.length, COUNT * 2, 'one DNAT rule per published port');

    await must('lxc-autostart', ['-g', group, '--kill'], 300_000);
    assert.equal(await rulesLeftAfterStop(own, 30_000), [], 'none of their rules left in nat or filter');
    assert.equal(hostMountsMentioning(root), []);
    for (const name of names) assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
    assert.is(treeDigest(join('/var/lib/lxc', base)), digest);
    console.log(`  (lxc-autostart started ${COUNT} thin containers with ${COUNT * 2} published ports in ${(took / 1000).toFixed(1)} s)`);
  });
}

storm.run();
