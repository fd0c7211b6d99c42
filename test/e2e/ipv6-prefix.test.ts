// End to end for a bridge whose IPv6 prefix changed (thin-lxc setup --ipv6 with another /64): doctor names the
// thin containers whose address is outside it, and refresh re-addresses them (config, state, DNS name), keeping
// each address's interface identifier, so that they start with an address in the new network.
// Run with the exclusive e2e lock: the suite changes lxcbr0's IPv6 network, and puts lxc-net's files, lxc-net and
// IPv6 forwarding back as they were after, as ipv6.test.ts does.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { readState } from '../../src/state/state.js';
import { formatIPv6, parseIPv6 } from '../../src/core/validate.js';
import { bridgeIPv6 } from '../../src/network/bridge.js';
import { NAMES_DIR } from '../../src/network/dhcp.js';
import { formatSubnet6, randomUlaPrefix } from '../../src/network/ipv6.js';
import { containerSuite, must, removeLxcContainer, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { keepLxcNetAsItWas, waitFor6 } from '../helpers/lxc-net.js';

const { tests: prefix, runnable, cleanup, base, root } = await containerSuite('IPv6: a new prefix on the bridge', 'p6base');



if (runnable) {
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  const lower64 = (address: string) => parseIPv6(address)! & ((1n << 64n) - 1n);
  /** doctor's line about the containers' IPv6 addresses. */
  const doctorLine = async () => (await thinLxc(['doctor', '--root', root])).stdout.split('\n').find((line) => line.includes('IPv6 addresses')) ?? '';

  prefix.before(() => {
    keepLxcNetAsItWas(cleanup);
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
