import { test } from 'uvu';
import * as assert from 'uvu/assert';
// The union mount planned as text, and whether the kernel can have the filesystem.
import { kernelFilesystems, kernelSupport, mountOptions, mountsUnder, requireKernelSupport } from '../../../src/union/mount.js';

const stack = {
  layers: ['/c/base/wlayer', '/var/lib/lxc/bb0/rootfs'],
  upper: '/c/w1/wlayer',
  work: '/c/w1/work',
  target: '/c/w1/image/rootfs',
};

test('overlayfs: lower layers top first, then the write layer and its workdir', () => {
  assert.is(mountOptions({ fs: 'overlay', ...stack }), 'lowerdir=/c/base/wlayer:/var/lib/lxc/bb0/rootfs,upperdir=/c/w1/wlayer,workdir=/c/w1/work');
});

test('AuFS: one writable branch over read-only ones', () => {
  assert.is(mountOptions({ fs: 'aufs', ...stack }), 'br=/c/w1/wlayer=rw:/c/base/wlayer=ro+wh:/var/lib/lxc/bb0/rootfs=ro');
});

const PROC_FILESYSTEMS = 'nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n';

test('reads /proc/filesystems', () => {
  assert.equal([...kernelFilesystems(PROC_FILESYSTEMS)], ['sysfs', 'tmpfs', 'ext4', 'overlay']);
});

test('a filesystem that is not loaded yet but is a module is accepted; one the module tree lacks, or with no module tree, is refused', () => {
  const dep = 'kernel/fs/overlayfs/overlay.ko.xz: \nkernel/fs/fuse/fuse.ko.zst:\n';
  const booted = 'nodev\tsysfs\n\text4\n';
  assert.is(kernelSupport('overlay', PROC_FILESYSTEMS, null), 'loaded');
  assert.is(kernelSupport('overlay', booted, dep), 'module', 'right after a reboot on Debian or Ubuntu');
  assert.is(kernelSupport('overlay', booted, null), 'absent', 'nothing to load it from');
  assert.is(kernelSupport('aufs', booted, dep), 'absent');
  for (const support of ['loaded', 'module'] as const) requireKernelSupport('overlay', support);
  assert.throws(
    () => requireKernelSupport('aufs', 'absent'),
    (error: Error) => error.message === 'aufs is not available in this kernel (neither loaded nor among its modules): use the default --fs overlay, or a kernel built with AuFS',
  );
});

test('mountsUnder: the mount points at or below a directory, in mountinfo order, octal escapes decoded, a sibling with the same prefix left out', () => {
  const mountinfo = [
    '70 69 254:0 / / rw,relatime - ext4 /dev/vda rw',
    '90 70 254:0 /l /c/w1/lowers/0 ro,relatime - ext4 /dev/vda rw',
    '91 70 0:50 / /c/w1/image/rootfs rw,relatime - overlay thin-lxc rw,lowerdir=/c/w1/lowers/0',
    '92 70 0:51 / /c/w10/image/rootfs rw,relatime - overlay thin-lxc rw',
    '93 70 0:52 / /c/w1/my\\040dir rw,relatime - tmpfs thin-lxc rw',
  ].join('\n');
  assert.equal(mountsUnder('/c/w1', mountinfo), ['/c/w1/lowers/0', '/c/w1/image/rootfs', '/c/w1/my dir']);
});

test.run();
