// A base: the layers its rootfs is made of, and which of its config lines a thin container keeps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { keptByThinContainer, rootfsLayers } from '../../../src/container/base.js';
import { parseLxcConfig } from '../../../src/lxc/config.js';
import { UserError } from '../../../src/core/errors.js';

test('rootfs paths become layers, top first', () => {
  assert.equal(rootfsLayers('/var/lib/lxc/b/rootfs', 'c'), ['/var/lib/lxc/b/rootfs']);
  assert.equal(rootfsLayers('dir:/var/lib/lxc/b/rootfs', 'c'), ['/var/lib/lxc/b/rootfs']);
  assert.equal(rootfsLayers('btrfs:/var/lib/lxc/b/rootfs', 'c'), ['/var/lib/lxc/b/rootfs']);
  assert.equal(rootfsLayers('overlay:/var/lib/lxc/b/rootfs:/var/lib/lxc/s/overlay/delta0', 'c'), [
    '/var/lib/lxc/s/overlay/delta0',
    '/var/lib/lxc/b/rootfs',
  ]);
});

test('block-device rootfs types are refused with the way out', () => {
  try {
    rootfsLayers('lvm:/dev/vg/b', '/var/lib/lxc/b/config');
    assert.unreachable();
  } catch (error) {
    assert.instance(error, UserError);
    assert.is(
      (error as Error).message,
      'base rootfs "lvm:/dev/vg/b" (in /var/lib/lxc/b/config) is on lvm storage, which thin-lxc cannot stack on: ' +
        'use a base made with the dir backend (lxc-create -B dir) or an overlay snapshot (lxc-copy -s)',
    );
  }
});

test("a thin container keeps the base's settings but not its identity or thin-lxc's hooks", () => {
  const kept = (line: string) => keptByThinContainer(parseLxcConfig(line)[0]!);
  for (const line of ['lxc.net.0.type = veth', 'lxc.include = /usr/share/lxc/config/common.conf', 'lxc.cap.drop = sys_module', 'lxc.hook.mount = /usr/share/lxc/hooks/nvidia']) {
    assert.ok(kept(line), line);
  }
  for (const line of [
    'lxc.rootfs.path = dir:/x',
    'lxc.uts.name = b',
    'lxc.net.0.hwaddr = 00:16:3e:00:00:01',
    'lxc.net.0.ipv4.address = 10.0.3.5/24',
    'lxc.hook.version = 1',
    'lxc.log.file = /var/lib/lxc/b/b.log',
    'lxc.start.auto = 1',
    'lxc.hook.pre-mount = /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-mount.js /containers/b',
  ]) {
    assert.not.ok(kept(line), line);
  }
});

test.run();
