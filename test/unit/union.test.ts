import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kernelFilesystems, mountArgs, mountOptions, requireKernelSupport } from '../../src/union.js';

const stack = {
  layers: ['/c/base/wlayer', '/var/lib/lxc/bb0/rootfs'],
  upper: '/c/w1/wlayer',
  work: '/c/w1/work',
  target: '/c/w1/image/rootfs',
};

test('overlayfs: lower layers top first, then the write layer and its workdir', () => {
  assert.equal(mountArgs({ fs: 'overlay', ...stack }), [
    '-t',
    'overlay',
    '-o',
    'lowerdir=/c/base/wlayer:/var/lib/lxc/bb0/rootfs,upperdir=/c/w1/wlayer,workdir=/c/w1/work',
    'thin-lxc',
    '/c/w1/image/rootfs',
  ]);
});

test('AuFS: one writable branch over read-only ones', () => {
  assert.is(mountOptions({ fs: 'aufs', ...stack }), 'br=/c/w1/wlayer=rw:/c/base/wlayer=ro+wh:/var/lib/lxc/bb0/rootfs=ro');
});

const PROC_FILESYSTEMS = 'nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n';

test('reads /proc/filesystems', () => {
  assert.equal([...kernelFilesystems(PROC_FILESYSTEMS)], ['sysfs', 'tmpfs', 'ext4', 'overlay']);
});

test('a missing filesystem is one clear line', () => {
  requireKernelSupport('overlay', PROC_FILESYSTEMS);
  assert.throws(
    () => requireKernelSupport('aufs', PROC_FILESYSTEMS),
    (error: Error) =>
      error.message ===
      'aufs is not available in this kernel (/proc/filesystems does not list it): use the default --fs overlay, or a kernel built with AuFS',
  );
});

test.run();
