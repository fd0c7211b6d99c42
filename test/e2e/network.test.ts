// End to end networking with real LXC and real traffic: static addresses on a base whose init runs DHCP,
// forwarded TCP and UDP from another host (a network namespace), from 127.0.0.1, and from containers (hairpin),
// the localhost guard, FORWARD policy DROP, crash recovery and reload. Everything made is removed in after().
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { readBridge } from '../../src/network/bridge.js';
import { HOSTS_DIR } from '../../src/network/dhcp.js';
import { formatSubnet, subnetOf } from '../../src/network/ipv4.js';
import { attach, containerSuite, must, removeLxcContainer, sh, startContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { containerAddresses, giveSocat, makeNamespace, request, rulesLeftAfterStop, rulesOf, startServers, waitForLease, type Namespace } from '../helpers/net.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const { tests: net, runnable, cleanup, base, root } = await containerSuite('networking with real LXC and real traffic', 'nbase');

interface Made {
  name: string;
  dir: string;
  ip: string;
  mac: string;
  tag: string;
}

if (runnable) {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const ports = { a: port, aUdp: port + 1, aLocal: port + 2, c: port + 3 };
  let ns: Namespace;
  let a: Made;
  let c: Made;

  const make = async (name: string, ...extra: string[]): Promise<Made> => {
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, ...extra]);
    assert.is(created.exitCode, 0, created.stderr);
    const shown = JSON.parse((await thinLxc(['show', name, '--root', root, '--json'])).stdout) as { ip: string; mac: string; dir: string };
    giveSocat(shown.dir);
    return { name, dir: shown.dir, ip: shown.ip, mac: shown.mac, tag: tagOf(shown.dir) };
  };

  // Made once for the whole suite, so that no test depends on what another test made: a and c run with their
  // servers; b was made beside a at the same moment and destroyed, its address given to c.
  let second: Made;
  net.before(async () => {
    ns = await makeNamespace(`tlt${process.pid.toString(36)}`);
    cleanup.add(() => ns.remove());
    [a, second] = await Promise.all([make(uniqueName('a'), '-p', `${ports.a}:80,${ports.aUdp}:53/udp,127.0.0.1:${ports.aLocal}:80`), make(uniqueName('b'))]);
    assert.is((await thinLxc(['destroy', second.name, '--root', root])).exitCode, 0);
    c = await make(uniqueName('c'), '--ip', second.ip, '-p', `${ports.c}:80`);
    for (const made of [a, c]) {
      assert.is((await startContainer(made.name)).exitCode, 0);
      await waitForLease('lxcbr0', made.mac, 20_000);
      await startServers(made.name);
    }
  });

  net("the bridge as thin-lxc reads it from /proc is what ip reports", async () => {
    const shown = JSON.parse(await must('ip', ['-4', '-j', 'addr', 'show', 'dev', 'lxcbr0'])) as { addr_info: { local: string; prefixlen: number }[] }[];
    const first = shown[0]!.addr_info[0]!;
    const bridge = readBridge('lxcbr0');
    assert.is(bridge.gateway, first.local);
    assert.is(formatSubnet(bridge.subnet), formatSubnet(subnetOf(first.local, first.prefixlen)));
  });

  net('two creates at once get distinct automatic addresses, reserved in dnsmasq, freed by destroy; taken ones are refused', async () => {
    assert.ok(a.ip && second.ip);
    assert.is.not(a.ip, second.ip);
    assert.ok(existsSync(join(HOSTS_DIR, a.name)));
    assert.not.ok(existsSync(join(HOSTS_DIR, second.name)), 'destroy releases the reservation');
    assert.is(c.ip, second.ip, "the destroyed container's address was free again for an explicit --ip");

    const taken = await thinLxc(['create', uniqueName('d'), '--base', base, '--root', root, '--ip', a.ip]);
    assert.is(taken.exitCode, 2);
    assert.match(taken.stderr, `thin-lxc: ip ${a.ip} is already used by thin container ${a.name}`);
    const published = await thinLxc(['create', uniqueName('d'), '--base', base, '--root', root, '-p', `${ports.a}:81`]);
    assert.is(published.exitCode, 2);
    assert.match(published.stderr, `is already published by thin container ${a.name}`);
  });

  net("a busybox base's udhcpc cannot move the container off its address", async () => {
    for (const made of [a, c]) {
      assert.is(await waitForLease('lxcbr0', made.mac, 20_000), made.ip, 'dnsmasq leased the reserved address');
      assert.equal(await containerAddresses(made.name), [made.ip]);
    }
  });

  net('published ports answer from another host, from 127.0.0.1, from the host and over UDP', async () => {
    const hostAddress = (await must('ip', ['-4', '-o', 'route', 'get', '10.213.57.2'])).match(/src (\S+)/)?.[1];
    assert.is(hostAddress, ns.hostAddress);
    assert.is(await request(ns.hostAddress, ports.a, { namespace: ns.name }), `tcp-${a.name}`, 'from another host');
    assert.is(await request('127.0.0.1', ports.a), `tcp-${a.name}`, 'from 127.0.0.1');
    assert.is(await request('10.0.3.1', ports.a), `tcp-${a.name}`, "from the host, through the bridge's address");
    assert.is(await request('127.0.0.1', ports.aUdp, { udp: true }), `udp-${a.name}`, 'UDP from 127.0.0.1');
    assert.is(await request(ns.hostAddress, ports.aUdp, { udp: true, namespace: ns.name }), `udp-${a.name}`, 'UDP from another host');
    assert.is(await request('127.0.0.1', ports.c), `tcp-${c.name}`);
  });

  net('a port published on 127.0.0.1 is reachable from the host only', async () => {
    assert.is(await request('127.0.0.1', ports.aLocal), `tcp-${a.name}`);
    assert.is(await request(ns.hostAddress, ports.aLocal, { namespace: ns.name, attempts: 1 }), '');
  });

  net("hairpin: a container reaches its own and another container's published port through the host", async () => {
    assert.is(await attach(a.name, `nc -w 3 10.0.3.1 ${ports.a} </dev/null`), `tcp-${a.name}`);
    assert.is(await attach(a.name, `nc -w 3 10.0.3.1 ${ports.c} </dev/null`), `tcp-${c.name}`);
    assert.is(await attach(c.name, `nc -w 3 ${ns.hostAddress} ${ports.a} </dev/null`), `tcp-${a.name}`);
  });

  net('forwarding keeps working when the FORWARD policy is DROP', async () => {
    const policy = (await must('iptables', ['-S', 'FORWARD'])).match(/^-P FORWARD (\w+)/m)?.[1] ?? 'ACCEPT';
    try {
      await must('iptables', ['-P', 'FORWARD', 'DROP']);
      assert.is(await request(ns.hostAddress, ports.a, { namespace: ns.name }), `tcp-${a.name}`);
      assert.is(await request(ns.hostAddress, ports.aUdp, { udp: true, namespace: ns.name }), `udp-${a.name}`);
    } finally {
      await must('iptables', ['-P', 'FORWARD', policy]);
    }
  });

  net('a root process in a container cannot reach a service the host binds to 127.0.0.1 only', async () => {
    const received: string[] = [];
    const listener = createSocket('udp4');
    await new Promise<void>((resolve) => listener.bind(0, '127.0.0.1', resolve));
    listener.on('message', (message) => received.push(String(message)));
    const secretPort = listener.address().port;
    try {
      const dropped = async () => Number((await must('iptables', ['-t', 'raw', '-L', 'THIN-LXC-GUARD', '-v', '-x', '-n'])).match(/^\s*(\d+)\s+\d+\s+DROP/m)?.[1]);
      const before = await dropped();
      // The CVE-2020-8558 attack: route 127.0.0.1 out of eth0 to the host, which has route_localnet on for the bridge.
      await attach(
        a.name,
        'sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1; ' +
          'ip route del 127.0.0.0/8 dev lo table local; ip route del 127.0.0.1 dev lo table local; ' +
          'ip route add 127.0.0.1/32 via 10.0.3.1 dev eth0; ' +
          `for i in 1 2 3; do echo leak | /socat - UDP4-SENDTO:127.0.0.1:${secretPort}; done; true`,
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(received, [], 'nothing reached the host service');
      assert.ok((await dropped()) >= before + 3, 'the packets reached the host and the guard dropped them');
    } finally {
      listener.close();
      await sh('lxc-attach', ['-n', a.name, '--', '/bin/sh', '-c', 'ip route del 127.0.0.1/32; ip route add local 127.0.0.0/8 dev lo table local; ip route add local 127.0.0.1 dev lo table local']);
    }
  });

  net('reload restores rules after a firewall flush, and repeating it changes nothing', async () => {
    await must('iptables', ['-t', 'nat', '-F', `${a.tag}-D`]);
    assert.is(await request('127.0.0.1', ports.a, { attempts: 1 }), '');
    for (let run = 0; run < 2; run++) {
      const reloaded = await thinLxc(['reload', '--root', root]);
      assert.is(reloaded.exitCode, 0, reloaded.stderr);
      assert.match(reloaded.stdout, a.name);
    }
    assert.is((await rulesOf(`${a.tag}-D`)).filter((line) => line.includes('DNAT --to')).length, 3);
    assert.is(await request('127.0.0.1', ports.a), `tcp-${a.name}`);
  });

  net('after a crash (monitor and init killed, no post-stop) a new start leaves exactly one set of rules', async () => {
    const expected = (await rulesOf(a.tag)).length;
    const init = (await must('lxc-info', ['-n', a.name, '-p', '-H'])).trim();
    const monitor = (await must('ps', ['-eo', 'pid=,args='])).split('\n').find((line) => line.includes(`[lxc monitor] /var/lib/lxc ${a.name}`))?.trim().split(' ')[0];
    assert.ok(monitor, 'found the monitor');
    await must('kill', ['-9', monitor!, init]);
    for (let i = 0; i < 50 && (await sh('lxc-info', ['-n', a.name, '-s', '-H'])).stdout.trim() !== 'STOPPED'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.is((await rulesOf(a.tag)).length, expected, 'post-stop did not run: the rules are stale');
    // The kernel removes the dead container's network namespace, and its veth with it, a moment after the
    // kill; until then its fixed veth name (lxc.net.0.veth.pair) is taken and lxc-start fails with EEXIST.
    const veth = `/sys/class/net/tlx${a.tag.slice('TLXC-'.length)}`;
    for (let i = 0; i < 50 && existsSync(veth); i++) await new Promise((r) => setTimeout(r, 100));
    assert.is((await startContainer(a.name)).exitCode, 0);
    assert.is((await rulesOf(a.tag)).length, expected, 'exactly one set');
    await startServers(a.name);
    assert.is(await request('127.0.0.1', ports.a), `tcp-${a.name}`);
  });

  net("an address a running LXC container uses, or one outside the bridge's subnet, is refused", async () => {
    const plain = uniqueName('plain');
    cleanup.add(() => removeLxcContainer(plain));
    await must('lxc-copy', ['-n', base, '-N', plain]);
    assert.is((await startContainer(plain)).exitCode, 0);
    const mac = (await attach(plain, 'cat /sys/class/net/eth0/address')).trim();
    const leased = await waitForLease('lxcbr0', mac, 20_000);
    assert.ok(leased, 'the plain container got a DHCP lease');
    const refused = await thinLxc(['create', uniqueName('e'), '--base', base, '--root', root, '--ip', leased!]);
    assert.is(refused.exitCode, 2);
    assert.is(refused.stderr.trim(), `thin-lxc: ip ${leased} is already used by running container ${plain}: choose another, or leave --ip out`);
    const outside = await thinLxc(['create', uniqueName('e'), '--base', base, '--root', root, '--ip', '192.168.1.5']);
    assert.is(outside.stderr.trim(), "thin-lxc: ip 192.168.1.5 is outside lxcbr0's subnet 10.0.3.0/24: choose one inside it, or leave --ip out");
    await removeLxcContainer(plain);
  });

  net('a start whose forwarding hook fails is aborted and leaves no rule', async () => {
    const broken = await make(uniqueName('broken'), '-p', `${port + 10}:80`);
    const statePath = join(broken.dir, 'thin-lxc.ini');
    writeFileSync(statePath, readFileSync(statePath, 'utf8').replace(/^subnet = .*$/m, 'subnet = "10.0.3.0/99"'));
    const started = await sh('lxc-start', ['-n', broken.name, '-d']);
    assert.is.not(started.exitCode, 0);
    assert.equal(await rulesOf(broken.tag), []);
    assert.match(readFileSync(join(broken.dir, 'hook.log'), 'utf8'), 'iptables-restore');
    assert.is((await sh('lxc-info', ['-n', broken.name, '-s', '-H'])).stdout.trim(), 'STOPPED');
    assert.is((await thinLxc(['destroy', broken.name, '--root', root])).exitCode, 0);
  });

  net('stop removes the rules; destroy removes the reservation; nothing of these containers is left in nat', async () => {
    for (const made of [a, c]) {
      await must('lxc-stop', ['-n', made.name]);
      assert.equal(await rulesLeftAfterStop(new RegExp(made.tag)), [], `${made.name}'s rules are gone after stop`);
      assert.is((await thinLxc(['destroy', made.name, '--root', root])).exitCode, 0);
      assert.not.ok(existsSync(join(HOSTS_DIR, made.name)));
    }
    // Only what this suite made: the host may have other thin containers, with their own chains.
    const nat = (await must('iptables-save', ['-t', 'nat'])).split('\n');
    assert.equal(nat.filter((line) => [a, c].some((made) => line.includes(made.tag) || line.includes(`thin-lxc ${made.name}`))), []);
  });
}

net.run();
