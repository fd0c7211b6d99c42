// End to end for a bridge whose IPv6 prefix changed (thin-lxc setup --ipv6 with another /64): doctor names the
// thin containers whose address is outside it, and refresh re-addresses them (config, state, DNS name), keeping
// each address's interface identifier, so that they start with an address in the new network.
// Run with the exclusive e2e lock: the suite changes lxcbr0's IPv6 network, and puts lxc-net's files, lxc-net and
// IPv6 forwarding back as they were after, as ipv6.test.ts does.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { readState } from '../../src/container/state.js';
import { formatIPv6, parseIPv6 } from '../../src/core/validate.js';
import { bridgeIPv6 } from '../../src/network/bridge.js';
import { NAMES_DIR } from '../../src/network/dhcp.js';
import { LXC_NET_DEFAULTS, shellVariable, THIN_DNSMASQ_CONF } from '../../src/network/lxc-net.js';
import { formatSubnet6, randomUlaPrefix } from '../../src/network/ipv6.js';
import { containerSuite, must, removeLxcContainer, startContainer, thinLxc, uniqueName } from '../helpers/host.js';

const { tests: prefix, runnable, cleanup, base, root } = await containerSuite('IPv6: a new prefix on the bridge', 'p6base');

const LXC_NET = ['/usr/libexec/lxc/lxc-net', '/usr/lib/x86_64-linux-gnu/lxc/lxc-net', '/usr/lib/lxc/lxc-net'].find((path) => existsSync(path)) ?? '/usr/libexec/lxc/lxc-net';
const lxcNet = (action: 'start' | 'stop') => execa(LXC_NET, [action], { reject: false, env: { ...process.env, USE_LXC_BRIDGE: 'true' } });
const FORWARDING = '/proc/sys/net/ipv6/conf/all/forwarding';

/** A file's text, or null when it does not exist: what to put back. */
const snapshot = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : null);
const putBack = (path: string, text: string | null) => (text === null ? rmSync(path, { force: true }) : writeFileSync(path, text));

if (runnable) {
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  /** The container's global IPv6 addresses on eth0, read from its network namespace. */
  const addresses6 = async (name: string) => {
    const pid = (await must('lxc-info', ['-n', name, '-p', '-H'])).trim();
    const shown = await must('nsenter', ['-t', pid, '-n', 'ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    return [...shown.matchAll(/inet6 ([0-9a-f:]+)\//g)].map((match) => match[1]!);
  };
  /** Until eth0 has it: after the init's flush, the next router advertisement (~20 s at most here). */
  const waitFor6 = async (name: string, address: string) => {
    for (let i = 0; i < 180; i++) {
      if ((await addresses6(name)).includes(address)) return true;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return false;
  };
  const lower64 = (address: string) => parseIPv6(address)! & ((1n << 64n) - 1n);
  /** doctor's line about the containers' IPv6 addresses. */
  const doctorLine = async () => (await thinLxc(['doctor', '--root', root])).stdout.split('\n').find((line) => line.includes('IPv6 addresses')) ?? '';

  prefix.before(() => {
    const defaults = snapshot(LXC_NET_DEFAULTS);
    const confFile = shellVariable(defaults ?? '', 'LXC_DHCP_CONFILE') ?? THIN_DNSMASQ_CONF;
    const conf = snapshot(confFile);
    const forwarding = readFileSync(FORWARDING, 'utf8').trim();
    // Put back after: lxc-net stopped with the IPv6 settings (so it removes its IPv6 masquerading), the files, lxc-net started.
    cleanup.add(async () => {
      await lxcNet('stop');
      putBack(LXC_NET_DEFAULTS, defaults);
      putBack(confFile, conf);
      await lxcNet('start');
      writeFileSync(FORWARDING, forwarding);
    });
  });

  prefix('after setup --ipv6 with a new prefix, doctor names the containers outside it, and refresh re-addresses them in config, state and DNS', async () => {
    const [first, second] = [randomUlaPrefix(), randomUlaPrefix()];
    const set = await thinLxc(['setup', '--ipv6', formatSubnet6(first)]);
    assert.is(set.exitCode, 0, set.stderr);
    const auto = track(uniqueName('auto'));
    const picked = track(uniqueName('pick'));
    const chosen = formatIPv6(first.network + 0x1234n);
    assert.is((await thinLxc(['create', auto, '--base', base, '--root', root])).exitCode, 0);
    assert.is((await thinLxc(['create', picked, '--base', base, '--root', root, '--ip6', chosen])).exitCode, 0);
    const before = readState(join(root, auto)).ip6!;

    const moved = await thinLxc(['setup', '--ipv6', formatSubnet6(second)]);
    assert.is(moved.exitCode, 0, moved.stderr);
    assert.match(moved.stdout, `Its IPv6 network was ${formatSubnet6(first)}: thin containers made before have addresses there; thin-lxc refresh moves them`);
    const bridge = bridgeIPv6('lxcbr0')!;
    assert.is(formatSubnet6(bridge.subnet), formatSubnet6(second), 'lxcbr0 is in the new network');
    const found = await doctorLine();
    assert.match(found, /^FAIL/, 'doctor fails');
    for (const [name, address] of [[auto, before], [picked, chosen]] as const) assert.match(found, `${name} (${address})`, `doctor names ${name}`);
    assert.match(found, `outside lxcbr0's IPv6 network ${formatSubnet6(second)}`);
    assert.match(found, 'thin-lxc refresh');

    const refreshed = await thinLxc(['refresh', auto, picked, '--root', root]);
    assert.is(refreshed.exitCode, 0, refreshed.stderr);
    const expected = { [auto]: formatIPv6(second.network | lower64(before)), [picked]: formatIPv6(second.network + 0x1234n) };
    for (const [name, address] of Object.entries(expected)) {
      const state = readState(join(root, name));
      assert.equal([state.ip6, state.subnet6], [address, formatSubnet6(second)], `${name}'s state has its new address`);
      const config = readFileSync(join(root, name, 'image/config'), 'utf8');
      assert.match(config, `\nlxc.net.0.ipv6.address = ${address}/64\nlxc.net.0.ipv6.gateway = ${bridge.gateway}\n`, `${name}'s config has it`);
      assert.is(config.split('\n').filter((line) => line.includes('.ipv6.')).length, 2, 'and no other IPv6 line');
      assert.match(readFileSync(join(NAMES_DIR, name), 'utf8'), `${address} ${name}\n`, `${name}'s DNS name has it`);
      assert.match(refreshed.stdout, `${name} (${name === auto ? before : chosen} -> ${address})`);
    }
    assert.not.match(await doctorLine(), auto, 'doctor no longer names them');
    assert.not.match(await doctorLine(), picked);
    const again = await thinLxc(['refresh', auto, picked, '--root', root]);
    assert.not.match(again.stdout, 'Re-addressed', 'a second refresh has nothing to re-address');

    for (const name of [auto, picked]) {
      assert.is((await startContainer(name)).exitCode, 0);
      assert.ok(await waitFor6(name, expected[name]!), `${name} runs with ${expected[name]}`);
      await must('lxc-stop', ['-n', name, '-k']);
      assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
    }
  });
}

prefix.run();
