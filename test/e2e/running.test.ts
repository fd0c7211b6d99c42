// End to end for telling whether a container runs without asking LXC (lxc/lxcpath isRunning): its monitor's command
// socket in /proc/net/unix, under the name LXC gives it, also when LXCPATH/NAME is too long for a socket address.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { commandSocketName, isRunning } from '../../src/lxc/lxcpath.js';
import { containerSuite, must, sh, temporaryRoot, thinLxc, uniqueName } from '../helpers/host.js';

const { tests: running, runnable, cleanup, base, root } = await containerSuite('running containers seen through their command sockets', 'runbase');

if (runnable) {
  running('a thin container in an lxcpath so long that LXC hashes its socket name is seen running, and stopped', async () => {
    // 100 characters of lxcpath: LXCPATH/NAME/command no longer fits in a socket address (106 bytes).
    const parent = temporaryRoot();
    const lxcpath = join(parent, 'l'.repeat(Math.max(1, 100 - parent.length - 1)));
    mkdirSync(lxcpath, { recursive: true });
    const name = uniqueName('long');
    cleanup.add(async () => {
      await sh('lxc-stop', ['-P', lxcpath, '-n', name, '-k']);
      await thinLxc(['destroy', name, '--root', root, '--lxcpath', lxcpath, '--force']);
      await sh('rm', ['-rf', parent]);
    });
    const made = await thinLxc(['create', name, '--base', join('/var/lib/lxc', base), '--root', root, '--lxcpath', lxcpath]);
    assert.is(made.exitCode, 0, made.stderr);
    assert.ok(`${lxcpath}/${name}/command`.length >= 106, 'the plain name would not fit');
    assert.not.ok(isRunning(lxcpath, name), 'not running yet');

    await must('lxc-start', ['-P', lxcpath, '-n', name, '-d']);
    await must('lxc-wait', ['-P', lxcpath, '-n', name, '-s', 'RUNNING', '-t', '30']);
    assert.ok(isRunning(lxcpath, name), 'seen running');
    assert.ok(readFileSync('/proc/net/unix', 'utf8').includes(` ${commandSocketName(lxcpath, name)}\n`), 'LXC listens on the hashed name');

    await must('lxc-stop', ['-P', lxcpath, '-n', name, '-k']);
    assert.not.ok(isRunning(lxcpath, name), 'seen stopped');
  });
}

running.run();
