// End to end for IPv6: thin-lxc setup --ipv6 on lxc-net's bridge, each container's IPv6 address (kept when
// its init flushes eth0), published ports on both families from another host (a network namespace with a ULA
// of its own), from the host and hairpin, a bound address, [::1], a firewall reload, a crash, cleanup at stop,
// and a bridge without IPv6.
// The suite gives lxcbr0 IPv6 and puts lxc-net's files, lxc-net and IPv6 forwarding back as they were after.
import { Resolver } from 'node:dns/promises';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { formatIPv6, parseIPv6 } from '../../src/core/validate.js';
import { bridgeIPv6 } from '../../src/network/bridge.js';
import { formatSubnet6 } from '../../src/network/ipv6.js';
import { LXC_NET_DEFAULTS, shellVariable } from '../../src/network/lxc-net.js';
import { attach, containerSuite, must, removeLxcContainer, sh, startContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { addresses6, keepLxcNetAsItWas, lxcNet, waitFor6 } from '../helpers/lxc-net.js';
import { giveSocat, makeNamespace, request, rulesLeftAfterStop, type Namespace } from '../helpers/net.js';
import { CLI } from '../helpers/paths.js';

const { tests: ipv6, runnable, cleanup, base, root } = await containerSuite('IPv6: addresses and published ports on both families', 'v6base');



if (runnable) {
  let nextPort = 41_000 + Math.floor(Math.random() * 8_000);
  const port = () => nextPort++;
  let ns: Namespace;
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  const show = async (name: string) => JSON.parse((await thinLxc(['show', name, '--root', root, '--json'])).stdout) as { ip: string; ip6: string | null; dir: string };
  /** TCP and UDP servers on both families that answer with the container's name and the client's address. */
  const serve = (name: string) =>
    attach(
      name,
      `(/socat TCP6-LISTEN:80,fork,reuseaddr,ipv6only=0 SYSTEM:'echo tcp-${name} \\$SOCAT_PEERADDR' </dev/null >/dev/null 2>&1 &); ` +
        `(/socat UDP6-RECVFROM:53,fork,ipv6only=0 SYSTEM:'echo udp-${name}' </dev/null >/dev/null 2>&1 &); ` +
        'for i in 1 2 3 4 5 6 7 8 9 10; do netstat -ltn | grep -q ":80 " && break; sleep 0.2; done',
    );
  /** socat prints a peer as [fd7e:0057:...]; an IPv4 client of a dual-stack socket as [::ffff:a.b.c.d]. */
  const peerOf = (answer: string) => {
    const value = parseIPv6(/\[([0-9a-f:]+)\]/.exec(answer)?.[1] ?? '');
    if (value === null) return '';
    if (value >> 32n !== 0xffffn) return formatIPv6(value);
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  };

  ipv6.before(async () => {
    keepLxcNetAsItWas(cleanup);
    ns = await makeNamespace(`tl6${process.pid.toString(36)}`, { ipv6: true });
    cleanup.add(() => ns.remove());
  });

  ipv6('setup --ipv6 gives lxcbr0 a ULA /64 with router advertisements; doctor reports it; a second run changes nothing', async () => {
    const before = bridgeIPv6('lxcbr0');
    const first = await thinLxc(['setup', '--ipv6']);
    assert.is(first.exitCode, 0, first.stderr);
    const now = bridgeIPv6('lxcbr0');
    assert.ok(now, 'lxcbr0 has a global IPv6 address');
    if (!before) assert.match(formatSubnet6(now!.subnet), /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/, 'a ULA /64');
    assert.match(first.stdout, `lxcbr0 has IPv6 ${now!.gateway} in ${formatSubnet6(now!.subnet)}`);
    const defaults = readFileSync(LXC_NET_DEFAULTS, 'utf8');
    assert.is(shellVariable(defaults, 'LXC_IPV6_NETWORK'), formatSubnet6(now!.subnet));
    assert.is(shellVariable(defaults, 'LXC_IPV6_NAT'), 'true');
    const dnsmasq = readFileSync(`/proc/${readFileSync('/run/lxc/dnsmasq.pid', 'utf8').trim()}/cmdline`, 'utf8');
    assert.match(dnsmasq, `--dhcp-range=${now!.gateway},ra-only`, "lxc-net's dnsmasq advertises the prefix");
    assert.match((await thinLxc(['doctor'])).stdout, `IPv6 ${now!.gateway}, ${formatSubnet6(now!.subnet)}`);
    const again = await thinLxc(['setup', '--ipv6']);
    assert.is(again.exitCode, 0, again.stderr);
    assert.not.match(again.stdout, 'restarted lxc-net', 'nothing to do the second time');
    assert.is(readFileSync(LXC_NET_DEFAULTS, 'utf8'), defaults);
    const bad = await thinLxc(['setup', '--ipv6', 'fd42::/48']);
    assert.is(bad.exitCode, 2);
    assert.match(bad.stderr, 'thin-lxc: --ipv6 "fd42::/48" is not an IPv6 /64 network');
  });

  ipv6('a container gets a stable IPv6 address, kept when its init flushes eth0, its default one and one given with --ip6; list, show, --json and DNS have it; --ip6 is checked', async () => {
    const name = track(uniqueName('addr'));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--json']);
    assert.is(created.exitCode, 0, created.stderr);
    const { ip6 } = JSON.parse(created.stdout) as { ip6: string };
    const bridge = bridgeIPv6('lxcbr0')!;
    assert.ok(ip6 && ip6.startsWith(bridge.gateway.replace(/::1$/, ':')), `${ip6} in ${formatSubnet6(bridge.subnet)}`);
    assert.is((await show(name)).ip6, ip6);
    assert.match((await thinLxc(['list', '--root', root])).stdout, ip6);
    const resolver = new Resolver({ timeout: 2_000, tries: 1 });
    resolver.setServers(['10.0.3.1']);
    assert.equal(await resolver.resolve6(name), [ip6], "lxc-net's dnsmasq answers for its name on IPv6 too (AAAA)");
    assert.is((await startContainer(name)).exitCode, 0);
    // busybox's init runs udhcpc, whose script flushes every address of eth0 (IPv6 too) before DHCP.
    assert.ok(await waitFor6(name, ip6), `eth0 has ${ip6} after its init ran: ${(await addresses6(name)).join(', ')}`);
    assert.equal(await addresses6(name), [ip6], 'exactly that address: it is the one SLAAC makes again');
    await must('lxc-stop', ['-n', name]);

    const chosen = track(uniqueName('mine'));
    const wanted = bridge.gateway.replace(/::1$/, '::4242');
    const mine = await thinLxc(['create', chosen, '--base', base, '--root', root, '--ip6', wanted.toUpperCase()]);
    assert.is(mine.exitCode, 0, mine.stderr);
    assert.is((await show(chosen)).ip6, wanted, 'given with --ip6, in canonical form');
    assert.is((await startContainer(chosen)).exitCode, 0);
    assert.ok(await waitFor6(chosen, wanted), `eth0 has ${wanted} after its init flushed it: ${(await addresses6(chosen)).join(', ')}`);
    assert.equal(await addresses6(chosen), [wanted], 'made again by SLAAC from its token, instead of the MAC-made one');
    await must('lxc-stop', ['-n', chosen]);
    const taken = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', root, '--ip6', wanted]);
    assert.match(taken.stderr, `thin-lxc: ip6 ${wanted} is already used by thin container ${chosen}`);
    const outside = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', root, '--ip6', 'fd00::5']);
    assert.match(outside.stderr, `thin-lxc: ip6 fd00::5 is outside lxcbr0's IPv6 network ${formatSubnet6(bridge.subnet)}`);
    for (const made of [name, chosen]) assert.is((await thinLxc(['destroy', made, '--root', root])).exitCode, 0);
  });

  ipv6('-p 8080:80 answers on IPv6 from another host with its real address, from the host and hairpin; [::1] is refused at once; reload repairs a flush; nothing is left at stop', async () => {
    const name = track(uniqueName('fwd'));
    const [tcp, udp] = [port(), port()];
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${tcp}:80`, '-p', `${udp}:53/udp`])).exitCode, 0);
    const { dir, ip6 } = await show(name);
    const tag = tagOf(dir);
    giveSocat(dir);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.ok(await waitFor6(name, ip6!));
    await serve(name);
    const bridge = bridgeIPv6('lxcbr0')!;

    const remote = await request(ns.hostAddress6, tcp, { namespace: ns.name });
    assert.match(remote, `tcp-${name}`, 'another host, over IPv6');
    assert.is(peerOf(remote), ns.address6, "the container sees the client's own IPv6 address");
    assert.match(await request(ns.hostAddress6, udp, { namespace: ns.name, udp: true }), `udp-${name}`, 'UDP over IPv6');
    assert.match(await request(ns.hostAddress, tcp, { namespace: ns.name }), `tcp-${name}`, 'and over IPv4, as before');
    assert.is(peerOf(await request(ns.hostAddress, tcp, { namespace: ns.name })), '10.213.57.2');
    assert.match(await request(bridge.gateway, tcp), `tcp-${name}`, "the host, to its own IPv6 address");
    assert.match(await attach(name, `echo ping | /socat -T2 - TCP6:[${bridge.gateway}]:${tcp}`), `tcp-${name}`, 'hairpin: the container to its own published port');

    // Nothing takes [::1]:PORT: the connection is refused at once, and a client goes on to 127.0.0.1.
    const started = Date.now();
    const loopback = await sh('socat', ['-T2', '-', `TCP6:[::1]:${tcp}`]);
    assert.is.not(loopback.exitCode, 0);
    assert.match(loopback.stderr, 'Connection refused');
    assert.ok(Date.now() - started < 1_500, 'refused, not left to time out');
    assert.match(await request('127.0.0.1', tcp), `tcp-${name}`);

    assert.ok((await sh('ip6tables-save', [])).stdout.includes(tag), 'its ip6tables rules are there while it runs');

    // A firewall reload that flushes ip6tables: doctor says so, and reload puts the IPv6 forwarding back.
    const ruleset6 = await must('ip6tables-save', []);
    try {
      await must('ip6tables', ['-t', 'nat', '-F']);
      assert.is(await request(ns.hostAddress6, tcp, { namespace: ns.name, attempts: 1 }), '', 'flushed: no forwarding');
      assert.match((await thinLxc(['doctor'])).stdout, `${name}: forwarding missing or incomplete`);
      assert.is((await thinLxc(['reload'])).exitCode, 0);
      assert.match(await request(ns.hostAddress6, tcp, { namespace: ns.name }), `tcp-${name}`, 'reload restored it');
    } finally {
      // Whatever else the flush took (lxc-net's IPv6 masquerading) comes back from the saved ruleset.
      await execa('ip6tables-restore', [], { input: ruleset6, reject: false });
    }
    await must('lxc-stop', ['-n', name]);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag), 15_000, 'ip6tables-save'), [], 'IPv6 rules gone at stop');
    assert.equal(await rulesLeftAfterStop(new RegExp(tag)), [], 'IPv4 rules too');
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  ipv6('after a crash (monitor and init killed, no post-stop) a new start leaves exactly one set of IPv6 rules, and it forwards', async () => {
    const name = track(uniqueName('crash'));
    const hostPort = port();
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${hostPort}:80`])).exitCode, 0);
    const { dir, ip6 } = await show(name);
    const tag = tagOf(dir);
    giveSocat(dir);
    assert.is((await startContainer(name)).exitCode, 0);
    const rules6 = async () => (await must('ip6tables-save', [])).split('\n').filter((line) => line.includes(tag)).length;
    const expected = await rules6();
    assert.ok(expected > 0);
    const init = (await must('lxc-info', ['-n', name, '-p', '-H'])).trim();
    const monitor = (await must('ps', ['-eo', 'pid=,args='])).split('\n').find((line) => line.includes(`[lxc monitor] /var/lib/lxc ${name}`))?.trim().split(' ')[0];
    assert.ok(monitor, 'found the monitor');
    await must('kill', ['-9', monitor!, init]);
    for (let i = 0; i < 50 && (await sh('lxc-info', ['-n', name, '-s', '-H'])).stdout.trim() !== 'STOPPED'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.is(await rules6(), expected, 'post-stop did not run: the IPv6 rules are stale');
    // Its fixed veth name is free once the kernel has removed the dead network namespace.
    for (let i = 0; i < 50 && existsSync(`/sys/class/net/tlx${tag.slice('TLXC-'.length)}`); i++) await new Promise((r) => setTimeout(r, 100));
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await rules6(), expected, 'exactly one set');
    assert.ok(await waitFor6(name, ip6!));
    await serve(name);
    assert.match(await request(ns.hostAddress6, hostPort, { namespace: ns.name }), `tcp-${name}`);
    await must('lxc-stop', ['-n', name]);
    assert.equal(await rulesLeftAfterStop(new RegExp(tag), 15_000, 'ip6tables-save'), []);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  ipv6('a bound IPv6 address answers alone; [::]: is IPv6 only and 0.0.0.0: IPv4 only; update can take IPv6 away; -p [::1]:... is refused at create', async () => {
    const name = track(uniqueName('bnd'));
    const [bound, only6, only4] = [port(), port(), port()];
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `[${ns.hostAddress6}]:${bound}:80`, '-p', `[::]:${only6}:80`, '-p', `0.0.0.0:${only4}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const { dir, ip6 } = await show(name);
    giveSocat(dir);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.ok(await waitFor6(name, ip6!));
    await serve(name);
    const bridge = bridgeIPv6('lxcbr0')!;

    assert.match(await request(ns.hostAddress6, bound, { namespace: ns.name }), `tcp-${name}`, 'on the bound address');
    assert.is(await request(bridge.gateway, bound, { attempts: 1 }), '', 'not on another of the host\'s addresses');
    assert.is(await request(ns.hostAddress, bound, { namespace: ns.name, attempts: 1 }), '', 'nor on IPv4');
    assert.match(await request(ns.hostAddress6, only6, { namespace: ns.name }), `tcp-${name}`);
    assert.is(await request(ns.hostAddress, only6, { namespace: ns.name, attempts: 1 }), '', '[::]: is IPv6 only');
    assert.match(await request(ns.hostAddress, only4, { namespace: ns.name }), `tcp-${name}`);
    assert.is(await request(ns.hostAddress6, only4, { namespace: ns.name, attempts: 1 }), '', '0.0.0.0: is IPv4 only');

    // update takes its last IPv6 ports away while it runs: its ip6tables rules go, its IPv4 port stays.
    const updated = await thinLxc(['update', name, '--root', root, '--unpublish', `[${ns.hostAddress6}]:${bound}:80/tcp`, '--unpublish', `[::]:${only6}:80/tcp`]);
    assert.is(updated.exitCode, 0, updated.stderr);
    assert.not.match((await must('ip6tables-save', [])), tagOf(dir), 'no IPv6 rule of it is left');
    assert.match(await request(ns.hostAddress, only4, { namespace: ns.name }), `tcp-${name}`);
    await must('lxc-stop', ['-n', name]);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);

    const loopback = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', root, '-p', '[::1]:8080:80']);
    assert.is(loopback.exitCode, 2);
    assert.match(loopback.stderr, "thin-lxc: publish \"[::1]:8080:80\": the kernel cannot forward IPv6's loopback [::1] to another host");
  });

  ipv6('a bridge without IPv6: containers forward IPv4 exactly as before, and no hook runs ip6tables', async () => {
    const withBoth = track(uniqueName('was6'));
    assert.is((await thinLxc(['create', withBoth, '--base', base, '--root', root, '-p', `${port()}:80`])).exitCode, 0);
    const hostPort = port();
    // IPv6 off on the bridge takes its addresses away, as on a host with IPv6 disabled.
    await must('sysctl', ['-w', 'net.ipv6.conf.lxcbr0.disable_ipv6=1']);
    cleanup.add(async () => {
      await sh('sysctl', ['-w', 'net.ipv6.conf.lxcbr0.disable_ipv6=0']);
      await lxcNet('stop');
      await lxcNet('start');
    });
    assert.is(bridgeIPv6('lxcbr0'), null);
    const plain = track(uniqueName('no6'));
    const created = await thinLxc(['create', plain, '--base', base, '--root', root, '-p', `${hostPort}:80`, '--json']);
    assert.is(created.exitCode, 0, created.stderr);
    assert.is((JSON.parse(created.stdout) as { ip6: string | null }).ip6, null);
    const { dir } = await show(plain);
    assert.not.match(readFileSync(join(dir, 'image/config'), 'utf8'), 'ipv6');
    const v6Only = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', root, '-p', `[::]:${port()}:80`]);
    assert.match(v6Only.stderr, 'is on IPv6, which lxcbr0 has none of: give it IPv6 with thin-lxc setup --ipv6');

    // ip6tables that leave a mark first on the PATH, which LXC hands its hooks.
    const fakeBin = mkdtempSync('/tmp/thin-lxc-fake6-');
    cleanup.add(() => rmSync(fakeBin, { recursive: true, force: true }));
    for (const tool of ['ip6tables', 'ip6tables-save', 'ip6tables-restore']) writeFileSync(join(fakeBin, tool), `#!/bin/sh\necho ${tool} >> ${fakeBin}/ran\nexit 1\n`, { mode: 0o755 });
    giveSocat(dir);
    for (const name of [plain, withBoth]) {
      const started = await execa('lxc-start', ['-n', name, '-d'], { reject: false, env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` } });
      assert.is(started.exitCode, 0, String(started.stderr));
      await must('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '20']);
    }
    await serve(plain);
    assert.match(await request(ns.hostAddress, hostPort, { namespace: ns.name }), `tcp-${plain}`, 'IPv4 forwarding as before');
    for (const name of [plain, withBoth]) {
      await execa('lxc-stop', ['-n', name], { reject: false, env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` } });
    }
    assert.not.ok(existsSync(join(fakeBin, 'ran')), `no ip6tables was run: ${existsSync(join(fakeBin, 'ran')) ? readFileSync(join(fakeBin, 'ran'), 'utf8') : ''}`);
    for (const name of [plain, withBoth]) {
      assert.not.ok(existsSync(join(root, name, 'hook.log')), `no hook of ${name} failed`);
      const destroyed = await execa(process.execPath, [CLI, 'destroy', name, '--root', root], { reject: false, env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` } });
      assert.is(destroyed.exitCode, 0, String(destroyed.stderr));
    }
  });
}

ipv6.run();
