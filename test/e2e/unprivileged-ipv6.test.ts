// End to end: an unprivileged thin container on a bridge with IPv6: its stable address and a published port over
// IPv6 from another host. Gives lxcbr0 IPv6 (setup --ipv6) and puts lxc-net back as it was after: run it holding
// the e2e lock exclusively.
import * as assert from 'uvu/assert';
import { attach, containerSuite, removeLxcContainer, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { addresses6, keepLxcNetAsItWas, waitFor6 } from '../helpers/lxc-net.js';
import { giveSocat, makeNamespace, request, type Namespace } from '../helpers/net.js';

const { tests: unprivileged6, runnable, cleanup, base, root } = await containerSuite('unprivileged thin containers on IPv6', 'u6base');

if (runnable) {
  let ns: Namespace;

  unprivileged6.before(async () => {
    keepLxcNetAsItWas(cleanup);
    ns = await makeNamespace(`tu6${process.pid.toString(36)}`, { ipv6: true });
    cleanup.add(() => ns.remove());
    const setup = await thinLxc(['setup', '--ipv6']);
    assert.is(setup.exitCode, 0, setup.stderr);
  });

  unprivileged6('an unprivileged container keeps its IPv6 address, and its published port answers over IPv6 from another host', async () => {
    const name = uniqueName('u6');
    cleanup.add(() => removeLxcContainer(name));
    const hostPort = 41_000 + Math.floor(Math.random() * 9_000);
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--unprivileged', '-p', `${hostPort}:80`, '--json']);
    assert.is(created.exitCode, 0, created.stderr);
    const { ip6, unprivileged } = JSON.parse(created.stdout) as { ip6: string; unprivileged: boolean };
    assert.ok(ip6 && unprivileged, created.stdout);
    giveSocat(`${root}/${name}`);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.match(await attach(name, 'cat /proc/self/uid_map'), /^0\s+100000\s+65536$/);
    assert.ok(await waitFor6(name, ip6), `eth0 has ${ip6}: ${(await addresses6(name)).join(', ')}`);
    await attach(
      name,
      `(/socat TCP6-LISTEN:80,fork,reuseaddr,ipv6only=0 SYSTEM:'echo tcp-${name}' </dev/null >/dev/null 2>&1 &); ` +
        'for i in 1 2 3 4 5 6 7 8 9 10; do netstat -ltn | grep -q ":80 " && break; sleep 0.2; done',
    );
    assert.is(await request(ns.hostAddress6, hostPort, { namespace: ns.name }), `tcp-${name}`, 'TCP over IPv6 from another host');
    await removeLxcContainer(name);
  });
}

unprivileged6.run();
