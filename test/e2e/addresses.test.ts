// Addresses that were used before: a destroyed container's DHCP lease, a host still plugged into the bridge,
// a stopped LXC container that owns its MAC. thin-lxc ends stale leases itself (no dnsmasq-utils) and
// refuses addresses somebody still has. Real LXC, real dnsmasq, a network namespace as the other host.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { CLI } from '../helpers/paths.js';
import { containerSuite, sh, must, removeLxcContainer, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { containerAddresses, leaseGone, makeBridgeHost, resolveAtBridge, waitForLease } from '../helpers/net.js';

const { tests: addresses, runnable, cleanup, base, root } = await containerSuite('addresses used before: stale leases, live hosts, owned MACs', 'abase');

if (runnable) {
  const show = async (name: string) => JSON.parse((await thinLxc(['show', name, '--root', root, '--json'])).stdout) as { ip: string; mac: string };
  const create = async (name: string, ...extra: string[]) => {
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, ...extra]);
    assert.is(created.exitCode, 0, created.stderr);
    return show(name);
  };

  addresses("names: the host and other containers resolve a thin container's name at the bridge's dnsmasq; destroy removes it", async () => {
    const [a, b] = [uniqueName('nma'), uniqueName('nmb')];
    await create(a);
    const made = await create(b);
    // Neither needs to ask for a lease: the name is in the reservation, which dnsmasq reads as it changes.
    assert.is(await resolveAtBridge(b), made.ip, 'the host resolves it at the bridge address');
    assert.is((await startContainer(a)).exitCode, 0);
    // Its init may still be bringing eth0 up: ask a few times.
    const answer = new RegExp(`Address:\\s+${made.ip.replace(/\./g, '\\.')}`);
    let looked = '';
    for (let i = 0; i < 20 && !answer.test(looked); i++) {
      looked = (await sh('lxc-attach', ['-n', a, '--', 'nslookup', b, '10.0.3.1'])).stdout;
      if (!answer.test(looked)) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.match(looked, answer, 'another container resolves it');
    await must('lxc-stop', ['-n', a, '-k']);
    assert.is((await thinLxc(['destroy', b, '--root', root])).exitCode, 0);
    let gone = '';
    for (let i = 0; i < 50 && (gone = await resolveAtBridge(b)) !== ''; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.is(gone, '', 'the name is gone with the container');
    assert.is((await thinLxc(['destroy', a, '--root', root])).exitCode, 0);
  });

  addresses('destroy ends the lease itself (dhcp_release is never run), so the same --ip again is exactly that address', async () => {
    const first = uniqueName('again1');
    const made = await create(first);
    assert.is((await startContainer(first)).exitCode, 0);
    assert.is(await waitForLease('lxcbr0', made.mac, 20_000), made.ip);
    await must('lxc-stop', ['-n', first, '-k']);
    // A dhcp_release first on the PATH would leave a mark: thin-lxc must not need it, whether installed or not.
    const fakeBin = mkdtempSync('/tmp/thin-lxc-fakebin-');
    cleanup.add(() => rmSync(fakeBin, { recursive: true, force: true }));
    writeFileSync(join(fakeBin, 'dhcp_release'), `#!/bin/sh\ntouch ${fakeBin}/ran\n`, { mode: 0o755 });
    const destroyed = await execa(process.execPath, [CLI, 'destroy', first, '--root', root], { reject: false, env: { PATH: `${fakeBin}:${process.env.PATH}` } });
    assert.is(destroyed.exitCode, 0, String(destroyed.stderr));
    assert.not.ok(existsSync(join(fakeBin, 'ran')), 'dhcp_release was not run');
    assert.ok(await leaseGone('lxcbr0', made.mac), "dnsmasq's lease of the destroyed container ended");

    const second = uniqueName('again2');
    const again = await create(second, '--ip', made.ip);
    assert.is(again.ip, made.ip);
    assert.is((await startContainer(second)).exitCode, 0);
    assert.is(await waitForLease('lxcbr0', again.mac, 20_000), made.ip, 'dnsmasq gave the new MAC the same address');
    assert.equal(await containerAddresses(second), [made.ip], 'eth0 holds exactly the chosen address');
    await must('lxc-stop', ['-n', second, '-k']);
    assert.is((await thinLxc(['destroy', second, '--root', root])).exitCode, 0);
  });

  addresses('an --ip a live host answers for is refused; once the host is gone, its lease is taken over cleanly', async () => {
    const host = await makeBridgeHost(`tla${process.pid.toString(36)}`);
    cleanup.add(() => host.remove());
    const leased = await host.lease();
    assert.is(await waitForLease('lxcbr0', host.mac, 5_000), leased);

    const name = uniqueName('takeover');
    cleanup.add(() => removeLxcContainer(name));
    const refused = await thinLxc(['create', name, '--base', base, '--root', root, '--ip', leased]);
    assert.is(refused.exitCode, 2);
    assert.is(refused.stderr.trim(), `thin-lxc: ip ${leased} is in use by a live host on lxcbr0 (MAC ${host.mac}): choose another, or leave --ip out`);
    assert.not.ok(existsSync(join(root, name)), 'nothing was made');

    await host.remove(); // unplugged: its lease stays in dnsmasq for an hour
    assert.is(await waitForLease('lxcbr0', host.mac, 1_000), leased, 'the stale lease is still there');
    const made = await create(name, '--ip', leased);
    assert.ok(await leaseGone('lxcbr0', host.mac, 1_000), 'create ended the stale lease');
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await waitForLease('lxcbr0', made.mac, 20_000), leased);
    assert.equal(await containerAddresses(name), [leased]);
    await must('lxc-stop', ['-n', name, '-k']);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  addresses('an --ip leased to a stopped LXC container that owns that MAC is refused, naming it', async () => {
    const plain = uniqueName('owner');
    cleanup.add(() => removeLxcContainer(plain));
    await must('lxc-copy', ['-n', base, '-N', plain]);
    const mac = '00:16:3e:7a:11:' + (process.pid % 256).toString(16).padStart(2, '0');
    const config = join('/var/lib/lxc', plain, 'config');
    writeFileSync(config, `${readFileSync(config, 'utf8')}lxc.net.0.hwaddr = ${mac}\n`);
    assert.is((await startContainer(plain)).exitCode, 0);
    const leased = await waitForLease('lxcbr0', mac, 20_000);
    assert.ok(leased, 'the plain container got a lease');
    await must('lxc-stop', ['-n', plain, '-k']);
    const refused = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', root, '--ip', leased!]);
    assert.is(refused.exitCode, 2);
    assert.is(refused.stderr.trim(), `thin-lxc: ip ${leased} is leased to LXC container ${plain} (MAC ${mac}): choose another, or leave --ip out`);
    await removeLxcContainer(plain);
  });
}

addresses.run();
