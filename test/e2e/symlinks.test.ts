// End to end: root in a thin container controls its write layer, and thin-lxc reads it on the host as root.
// A symlink there to the host's /etc (made as root inside would, in the write layer) is never followed:
// create --base of that container, and diff, even while a directory is swapped for such a symlink.
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerSuite, removeLxcContainer, thinLxc, uniqueName } from '../helpers/host.js';

const { tests: symlinks, runnable, cleanup, base, root } = await containerSuite("a write layer's symlinks are never followed on the host", 'slbase');

/** Swaps two entries of a directory with renameat2(RENAME_EXCHANGE) as fast as it can, for at most `seconds`. */
const SWAPPER = `
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
a, b, seconds = sys.argv[1].encode(), sys.argv[2].encode(), float(sys.argv[3])
end = time.time() + seconds
print('swapping', flush=True)
while time.time() < end:
    for _ in range(1000):
        libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
`;

if (runnable) {
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };

  symlinks('create --base a thin container whose etc is a symlink to the host\'s /etc reads nothing of the host', async () => {
    const lower = track(uniqueName('lower'));
    assert.is((await thinLxc(['create', lower, '--base', base, '--root', root])).exitCode, 0);
    const wlayerEtc = join(root, lower, 'wlayer', 'etc');
    rmSync(wlayerEtc, { recursive: true, force: true });
    symlinkSync('/etc', wlayerEtc);

    const upper = track(uniqueName('upper'));
    const created = await thinLxc(['create', upper, '--base', lower, '--root', root]);
    assert.is(created.exitCode, 0, created.stderr);
    const upperEtc = join(root, upper, 'wlayer', 'etc');
    const hosts = existsSync(join(upperEtc, 'hosts')) ? readFileSync(join(upperEtc, 'hosts'), 'utf8') : null;
    const hostHosts = readFileSync('/etc/hosts', 'utf8');
    // What the host's /etc/hosts would become with the host's name replaced: the leak this test looks for.
    const leaked = hostHosts.replace(new RegExp(`(?<=\\s)${hostname().replace(/[.]/g, '\\.')}(?=\\s|$)`, 'gm'), upper);
    assert.ok(hosts === null || (hosts !== leaked && hosts !== hostHosts), `the host's /etc/hosts was copied into ${upper}: ${hosts}`);
    assert.not.ok(existsSync(join(upperEtc, 'hostname')), 'no hostname was written: the base has none it can read');
    assert.is(readFileSync('/etc/hosts', 'utf8'), hostHosts, "the host's own file is untouched");
    for (const name of [upper, lower]) assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  symlinks('diff lists a symlink to /etc as one entry, and nothing of the host while a directory is swapped for it', async () => {
    const name = track(uniqueName('diff'));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root])).exitCode, 0);
    const wlayer = join(root, name, 'wlayer');
    mkdirSync(join(wlayer, 'swap'));
    writeFileSync(join(wlayer, 'swap', 'mine'), 'x');
    symlinkSync('/etc', join(wlayer, 'host'));

    const still = await thinLxc(['diff', name, '--root', root]);
    assert.is(still.exitCode, 0, still.stderr);
    assert.ok(still.stdout.split('\n').includes('A /host'));
    assert.not.match(still.stdout, '/host/', 'nothing below the symlink');

    const swapper = execa('python3', ['-c', SWAPPER, join(wlayer, 'swap'), join(wlayer, 'host'), '60'], { reject: false });
    cleanup.add(() => swapper.kill('SIGKILL'));
    await new Promise<void>((resolve) => swapper.stdout!.once('data', () => resolve()));
    const seen: string[] = [];
    for (let run = 0; run < 30; run++) {
      const listed = await thinLxc(['diff', name, '--root', root]);
      assert.is(listed.exitCode, 0, listed.stderr);
      seen.push(...listed.stdout.split('\n').filter((line) => /^[ACD] \/(swap|host)\//.test(line) && !/\/(swap|host)\/mine$/.test(line)));
    }
    swapper.kill('SIGKILL');
    await swapper;
    assert.equal(seen, [], 'no host file was listed');
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });
}

symlinks.run();
