// End to end for removal across mounts: destroying a thin container never crosses into another mount (a user's bind mount under
// its directory keeps its source's files), and a leftover registration is removed only when it is provably thin-lxc's.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { mountPointsUnder } from '../../src/core/files.js';
import { containerSuite, must, removeLxcContainer, sh, temporaryRoot, thinLxc, uniqueName } from '../helpers/host.js';

const { tests: removal, runnable, cleanup, base, root } = await containerSuite('removal never crosses a mount with real LXC', 'mbase');

if (runnable) {
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  /** A temporary directory with a file, bind-mounted at `target`; unmounted in cleanup whatever happens. */
  const bindMount = async (target: string) => {
    const source = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', source]));
    writeFileSync(join(source, 'user-data.txt'), 'keep me\n');
    mkdirSync(target, { recursive: true });
    // Unmounted wherever it is by then (a destroy may have moved it): every mount under this suite's root is its own.
    cleanup.add(async () => {
      for (const point of mountPointsUnder(root).reverse()) await sh('umount', ['-l', point]);
    });
    await must('mount', ['--bind', source, target]);
    return source;
  };

  for (const [how, destroy] of [
    ['thin-lxc destroy', (name: string) => thinLxc(['destroy', name, '--root', root])],
    ['lxc-destroy', (name: string) => sh('lxc-destroy', ['-n', name])],
  ] as const) {
    removal(`${how} of a stopped thin container with a bind mount under its directory refuses, says why, and the mount's source keeps its files`, async () => {
      const name = track(uniqueName('bind'));
      assert.is((await thinLxc(['create', name, '--base', base, '--root', root])).exitCode, 0);
      const target = join(root, name, 'wlayer', 'srv', 'data');
      const source = await bindMount(target);

      const refused = await destroy(name);
      assert.is.not(refused.exitCode, 0, `${how} refused`);
      if (how === 'thin-lxc destroy') {
        assert.is(refused.stderr.trim(), `thin-lxc: ${target} is a mount point inside thin container ${name}'s directory, which thin-lxc never removes across: unmount it (umount ${target}), then try again; nothing was removed`);
      }
      assert.is(readFileSync(join(source, 'user-data.txt'), 'utf8'), 'keep me\n', "the bind mount's source keeps its file");
      assert.ok(existsSync(join(root, name, 'thin-lxc.ini')), 'the container is still there, whole');

      await must('umount', [target]);
      const done = await destroy(name);
      assert.is(done.exitCode, 0, done.stderr);
      assert.not.ok(existsSync(join(root, name)));
      assert.is(readFileSync(join(source, 'user-data.txt'), 'utf8'), 'keep me\n');
    });
  }

  removal("a leftover of a killed create never removes a registration directory holding someone else's files", async () => {
    const lxcpath = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', lxcpath]));
    const name = uniqueName('reg');
    // A user's own directory where the leftover's registration would be: no config, files of theirs.
    mkdirSync(join(lxcpath, name));
    writeFileSync(join(lxcpath, name, 'notes.txt'), 'mine\n');
    // And an empty one, which is what a create killed between making the directory and writing its config leaves.
    const emptyName = uniqueName('empty');
    mkdirSync(join(lxcpath, emptyName));

    const model = track(uniqueName('model'));
    assert.is((await thinLxc(['create', model, '--base', base, '--root', root])).exitCode, 0);
    const state = readFileSync(join(root, model, 'thin-lxc.ini'), 'utf8')
      .replace(/^ip = .*$/m, 'ip = ""')
      .replace(/^veth = .*$/m, 'veth = ""')
      .replace(/^lxcpath = .*$/m, `lxcpath = ${JSON.stringify(lxcpath)}`);
    // pids above pid_max are never alive: these are leftovers of killed processes.
    for (const [label, who] of [['mine', name], ['killed', emptyName]]) {
      const leftover = join(root, `.creating-${label}-${uniqueName('x')}-4194400`);
      mkdirSync(leftover);
      writeFileSync(join(leftover, 'thin-lxc.ini'), state.replace(/^name = .*$/m, `name = ${JSON.stringify(who)}`).replace(/^id = .*$/m, `id = ${JSON.stringify(label)}`));
    }

    const sweeper = track(uniqueName('sweep'));
    assert.is((await thinLxc(['create', sweeper, '--base', base, '--root', root])).exitCode, 0);
    assert.is(readFileSync(join(lxcpath, name, 'notes.txt'), 'utf8'), 'mine\n', "the user's directory and file are kept");
    assert.not.ok(existsSync(join(lxcpath, emptyName)), 'the empty registration directory a killed create left is gone');
  });
}

removal.run();
