import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { identityFiles } from '../../src/identity.js';
import { readTemplate, renderConfig } from '../../src/render.js';
import { mountEntry } from '../../src/mounts.js';

function layer(files: Record<string, string>): string {
  const dir = mkdtempSync('/tmp/thin-lxc-unit-');
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

test("the base's hostname is replaced in /etc/hostname and /etc/hosts, from the top layer that has them", () => {
  const bottom = layer({ 'etc/hostname': 'deb0\n', 'etc/hosts': '127.0.0.1 localhost\n127.0.1.1   deb0\n10.0.0.9 deb0x\n' });
  const top = layer({ 'etc/hostname': 'snap1\n' });
  try {
    assert.equal(identityFiles([bottom], 'web1'), [
      { path: 'etc/hostname', content: 'web1\n' },
      { path: 'etc/hosts', content: '127.0.0.1 localhost\n127.0.1.1   web1\n10.0.0.9 deb0x\n' },
    ]);
    assert.equal(identityFiles([top, bottom], 'web1'), [{ path: 'etc/hostname', content: 'web1\n' }], 'snap1 is not in hosts');
  } finally {
    rmSync(bottom, { recursive: true });
    rmSync(top, { recursive: true });
  }
});

test('a base without /etc/hostname (busybox) gets nothing written', () => {
  const bare = layer({ 'etc/passwd': 'root:x:0:0::/root:/bin/sh\n' });
  try {
    assert.equal(identityFiles([bare], 'web1'), []);
  } finally {
    rmSync(bare, { recursive: true });
  }
});

test('an address, published ports, bind mounts and autostart add their config lines', () => {
  const text = renderConfig(readTemplate(), {
    version: '1',
    id: 'w1',
    name: 'web1',
    baseName: 'b',
    baseConfig: '/var/lib/lxc/b/config',
    baseLines: ['lxc.net.0.type = veth', 'lxc.net.0.link = lxcbr0'],
    fs: 'overlay',
    rootfs: '/c/w1/image/rootfs',
    wlayer: '/c/w1/wlayer',
    hwaddrs: [{ index: 0, address: '00:16:3e:00:00:01' }],
    publish: '8080:80/tcp',
    ipv4: { index: 0, address: '10.0.3.67', prefix: 24, broadcast: '10.0.3.255', gateway: '10.0.3.1', veth: 'tlx00000001' },
    hooks: { mount: '/n /m.js /c/w1', destroy: '/n /d.js /c/w1', clone: '/n /c.js /c/w1', portsUp: '/n /u.js /c/w1', portsDown: '/n /p.js /c/w1' },
    mounts: [
      mountEntry({ host: '/srv/my app', container: '/app', readOnly: false }, true),
      mountEntry({ host: '/etc/host\\conf', container: '/etc/my conf', readOnly: true }, false),
    ],
    autostart: true,
  });
  for (const line of [
    'lxc.net.0.ipv4.address = 10.0.3.67/24 10.0.3.255',
    'lxc.net.0.ipv4.gateway = 10.0.3.1',
    'lxc.net.0.veth.pair = tlx00000001',
    'lxc.hook.start-host = /n /u.js /c/w1',
    'lxc.hook.post-stop = /n /p.js /c/w1',
    'lxc.mount.entry = /srv/my\\040app app none bind,create=dir 0 0',
    'lxc.mount.entry = /etc/host\\134conf etc/my\\040conf none bind,create=file,ro 0 0',
    'lxc.start.auto = 1',
  ]) {
    assert.ok(text.split('\n').includes(line), line);
  }
});

test.run();
