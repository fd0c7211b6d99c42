// End to end: device nodes in a base's rootfs and an unprivileged thin container. LXC's own unprivileged rootfs is
// mounted inside the container's user namespace, so the kernel never opens a device node on it; a thin container's
// union is mounted by host root (in its monitor's namespace), so it must say nodev itself: else root inside opens
// what the base holds (a Debian base from LXC's template has /dev/console, 5:1, the host's console, which LXC's
// common.conf allows), and its copy-up puts the node in the host's write layer with the mode root inside gives it.
// The node used here is harmless (1:3, what /dev/null is): only whether it opens is asked.
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { containerSuite, must, removeLxcContainer, sh, startContainer, thinLxc, uniqueName } from '../helpers/host.js';

const { tests: devices, runnable, cleanup, base, root } = await containerSuite('device nodes of the base and unprivileged thin containers', 'dvbase');

if (runnable) {
  devices("root inside an unprivileged container cannot open a device node of its base's rootfs, not even through a bind of /", async () => {
    // The suite's own base: a character device 1:3 at its rootfs' top.
    await must('mknod', [join('/var/lib/lxc', base, 'rootfs/basenode'), 'c', '1', '3']);
    const name = uniqueName('udev');
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--unprivileged']);
    assert.is(created.exitCode, 0, created.stderr);
    assert.is((await startContainer(name)).exitCode, 0);
    const script = 'echo x > /basenode && echo opened; mkdir -p /m && mount --bind / /m && echo x > /m/basenode && echo opened-through-bind; true';
    const ran = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', script]);
    assert.is(ran.stdout.trim(), '', `root inside opened the base's device node: ${ran.stdout.trim().replace(/\n/g, ', ')}`);
    await must('lxc-stop', ['-n', name, '-k']);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });
}

devices.run();
