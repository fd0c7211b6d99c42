// A Debian base (systemd, ifupdown running DHCP): the thin container boots, keeps its static address,
// takes its own hostname and finds other thin containers by name. debootstrap makes the base (about a minute; LXC caches it for later runs).
import * as assert from 'uvu/assert';
import { DEBIAN, attach, containerSuite, must, removeLxcContainer, sh, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { containerAddresses, waitForLease } from '../helpers/net.js';

const { tests: debian, runnable, cleanup, base, root } = await containerSuite('a Debian base whose init runs DHCP', 'deb', DEBIAN);

if (runnable) {
  debian('boots with systemd, keeps its static address through DHCP, has its own hostname, and a re-created one gets the same address exactly', async () => {
    const name = uniqueName('dthin');
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root]);
    assert.is(created.exitCode, 0, created.stderr);
    const shown = JSON.parse((await thinLxc(['show', name, '--root', root, '--json'])).stdout) as { ip: string; mac: string };

    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await waitForLease('lxcbr0', shown.mac, 60_000), shown.ip, "ifupdown's DHCP got the reserved address");
    let state = '';
    for (let i = 0; i < 120 && !['running', 'degraded'].includes(state); i++) {
      state = (await sh('lxc-attach', ['-n', name, '--', 'systemctl', 'is-system-running'])).stdout.trim();
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.ok(['running', 'degraded'].includes(state), `systemd finished booting (${state})`);
    assert.equal(await containerAddresses(name), [shown.ip]);
    assert.is(await attach(name, 'hostname'), name);
    assert.match(await attach(name, 'ip route show default'), /^default via \S+ dev eth0/);

    // Names: another thin container, by name, from inside this one (glibc's resolver, through DHCP's nameserver).
    const peer = uniqueName('dpeer');
    cleanup.add(() => removeLxcContainer(peer));
    assert.is((await thinLxc(['create', peer, '--base', base, '--root', root])).exitCode, 0);
    const peerIp = (JSON.parse((await thinLxc(['show', peer, '--root', root, '--json'])).stdout) as { ip: string }).ip;
    let found = '';
    for (let i = 0; i < 40 && !found.startsWith(peerIp); i++) {
      found = (await sh('lxc-attach', ['-n', name, '--', 'getent', 'hosts', peer])).stdout.trim();
      if (!found.startsWith(peerIp)) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.is(found.split(/\s+/).join(' '), `${peerIp} ${peer}`, `getent hosts ${peer} inside ${name}`);
    assert.is((await thinLxc(['destroy', peer, '--root', root])).exitCode, 0);
    assert.is((await sh('lxc-attach', ['-n', name, '--', 'getent', 'hosts', peer])).exitCode, 2, 'destroyed, its name is gone');
    await must('lxc-stop', ['-n', name]);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);

    // The same address again for a new MAC, within the lease time: ifupdown's DHCP must get exactly it.
    const again = uniqueName('dagain');
    cleanup.add(() => removeLxcContainer(again));
    const recreated = await thinLxc(['create', again, '--base', base, '--root', root, '--ip', shown.ip]);
    assert.is(recreated.exitCode, 0, recreated.stderr);
    const newMac = (JSON.parse((await thinLxc(['show', again, '--root', root, '--json'])).stdout) as { mac: string }).mac;
    assert.is((await startContainer(again)).exitCode, 0);
    assert.is(await waitForLease('lxcbr0', newMac, 60_000), shown.ip, 'dnsmasq leased the same address to the new MAC');
    for (let i = 0; i < 120 && (await sh('lxc-attach', ['-n', again, '--', 'systemctl', 'is-system-running'])).stdout.trim() === 'starting'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.equal(await containerAddresses(again), [shown.ip], 'eth0 holds exactly the chosen address, no second lease');
    await must('lxc-stop', ['-n', again]);
    assert.is((await thinLxc(['destroy', again, '--root', root])).exitCode, 0);
  });
}

debian.run();
