// End to end: route_localnet on the bridge never without the localhost guard (CVE-2020-8558), whatever family
// a container publishes on: an IPv6-only publisher as the first since boot, one whose bridge has since lost
// IPv6, and doctor and reload after a firewall reload flushed the raw table.
// The suite changes the host's firewall and lxc-net: run it under the exclusive e2e lock. It puts back the raw
// table, route_localnet, lxc-net's files and the bridge's IPv6 as they were.
import { readFileSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerSuite, must, removeLxcContainer, sh, startContainer, tagOf, thinLxc, uniqueName } from '../helpers/host.js';
import { keepLxcNetAsItWas, lxcNet } from '../helpers/lxc-net.js';

const { tests: localnet, runnable, cleanup, base, root } = await containerSuite('route_localnet goes with the localhost guard', 'lnbase');

const ROUTE_LOCALNET = '/proc/sys/net/ipv4/conf/lxcbr0/route_localnet';


/** Whether the raw table jumps to THIN-LXC-GUARD and the guard drops 127.0.0.0/8 from anywhere but lo. */
async function guardPresent(): Promise<boolean> {
  const prerouting = await sh('iptables', ['-w', '-t', 'raw', '-S', 'PREROUTING']);
  const guard = await sh('iptables', ['-w', '-t', 'raw', '-S', 'THIN-LXC-GUARD']);
  return prerouting.stdout.includes('-j THIN-LXC-GUARD') && guard.stdout.includes('-d 127.0.0.0/8 ! -i lo -j DROP');
}

/** A host as after a boot, before any thin container published a port: route_localnet off and no guard. */
async function firstSinceBoot(): Promise<void> {
  for (let i = 0; i < 10 && (await sh('iptables', ['-w', '-t', 'raw', '-D', 'PREROUTING', '-j', 'THIN-LXC-GUARD'])).exitCode === 0; i++);
  await sh('iptables', ['-w', '-t', 'raw', '-F', 'THIN-LXC-GUARD']);
  await sh('iptables', ['-w', '-t', 'raw', '-X', 'THIN-LXC-GUARD']);
  writeFileSync(ROUTE_LOCALNET, '0');
  assert.not.ok(await guardPresent(), 'the guard is gone before the start');
}

const safe = async () => readFileSync(ROUTE_LOCALNET, 'utf8').trim() === '0' || (await guardPresent());

if (runnable) {
  let nextPort = 41_000 + Math.floor(Math.random() * 8_000);
  const port = () => nextPort++;
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  const dirOf = async (name: string) => (JSON.parse((await thinLxc(['show', name, '--root', root, '--json'])).stdout) as { dir: string }).dir;

  localnet.before(async () => {
    const routeLocalnet = readFileSync(ROUTE_LOCALNET, 'utf8').trim();
    const raw = await must('iptables-save', ['-t', 'raw']);
    // Put back after, newest first: the raw table and route_localnet, then lxc-net as the IPv6 suite does.
    keepLxcNetAsItWas(cleanup);
    cleanup.add(async () => {
      await execa('iptables-restore', ['-w', '-T', 'raw'], { input: raw, reject: false });
      writeFileSync(ROUTE_LOCALNET, routeLocalnet);
    });
    const setup = await thinLxc(['setup', '--ipv6']);
    assert.is(setup.exitCode, 0, setup.stderr);
  });

  localnet('the first publisher since boot publishes only on [::]: its start leaves route_localnet off, or the guard in place', async () => {
    const name = track(uniqueName('v6only'));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `[::]:${port()}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    const tag = tagOf(await dirOf(name));
    await firstSinceBoot();
    assert.is((await startContainer(name)).exitCode, 0);
    assert.match(await must('ip6tables-save', []), tag, 'its IPv6 forwarding is installed');
    assert.ok(await safe(), `route_localnet is ${readFileSync(ROUTE_LOCALNET, 'utf8').trim()} and the guard is missing`);
    await must('lxc-stop', ['-n', name]);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  localnet('doctor fails while route_localnet is on and the raw table was flushed; reload puts the guard back', async () => {
    writeFileSync(ROUTE_LOCALNET, '1');
    await must('iptables', ['-w', '-t', 'raw', '-F']);
    const found = await thinLxc(['doctor']);
    assert.is(found.exitCode, 1);
    assert.match(found.stdout, /FAIL\s+localhost guard\s+route_localnet is on for lxcbr0 but the raw table has no THIN-LXC-GUARD.*: thin-lxc reload/);
    const reloaded = await thinLxc(['reload']);
    assert.is(reloaded.exitCode, 0, reloaded.stderr);
    // Said only when no running container's own IPv4 forwarding put it back first (another thin container may run).
    if (!/Forwarding re-applied for [1-9]/.test(reloaded.stdout)) assert.match(reloaded.stdout, 'Localhost guard put back for lxcbr0.');
    assert.ok(await guardPresent(), 'the guard and its jump are back');
    assert.match((await thinLxc(['doctor'])).stdout, /ok\s+localhost guard/);
  });

  localnet('a container whose only ports are IPv6, on a bridge that has since lost IPv6: its start leaves route_localnet off, or the guard in place', async () => {
    const name = track(uniqueName('lost6'));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `[::]:${port()}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    await must('sysctl', ['-w', 'net.ipv6.conf.lxcbr0.disable_ipv6=1']);
    cleanup.add(async () => {
      await sh('sysctl', ['-w', 'net.ipv6.conf.lxcbr0.disable_ipv6=0']);
      await lxcNet('stop');
      await lxcNet('start');
    });
    await firstSinceBoot();
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is((await sh('lxc-info', ['-n', name, '-s', '-H'])).stdout.trim(), 'RUNNING');
    assert.ok(await safe(), `route_localnet is ${readFileSync(ROUTE_LOCALNET, 'utf8').trim()} and the guard is missing`);
    await must('lxc-stop', ['-n', name]);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });
}

localnet.run();
