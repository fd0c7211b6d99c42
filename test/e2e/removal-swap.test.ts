// End to end: removing a thin container walks its write layer, which whoever has the container's ids on the host
// can change while root removes it (an unprivileged container's root is uid 100000 there, and any local user who
// runs a setuid program it left in its write layer is too). A directory swapped for a symlink mid-walk must never
// lead the removal out of the container's directory. The swap is forced: destroy is stopped (SIGSTOP) once it is
// inside the directory, the directory is swapped for a symlink (rename), and destroy goes on.
import { mkdirSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerSuite, removeLxcContainer, sh, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually } from '../helpers/locks.js';
import { CLI } from '../helpers/paths.js';

const { tests: removal, runnable, cleanup, base, root } = await containerSuite('removing a write layer that changes meanwhile', 'swbase');

const FILES = 20_000;

function count(dir: string): number {
  try {
    return readdirSync(dir).length;
  } catch {
    return -1;
  }
}

if (runnable) {
  removal('destroy never removes a file outside the container when a directory of its write layer becomes a symlink while it is removed', async () => {
    const name = uniqueName('swap');
    cleanup.add(() => removeLxcContainer(name));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root, '--unprivileged'])).exitCode, 0);
    // The victim: a directory of host root's outside the thin root, with the same names as the write layer's.
    const victim = join(`/tmp/${uniqueName('victim')}`);
    cleanup.add(() => sh('rm', ['-rf', victim, `${victim}.moved`]));
    mkdirSync(victim);
    const dir = join(root, name, 'wlayer/race');
    mkdirSync(dir);
    for (let index = 0; index < FILES; index++) {
      writeFileSync(join(victim, `f${index}`), '');
      writeFileSync(join(dir, `f${index}`), '');
    }
    const destroy = execa(process.execPath, [CLI, 'destroy', name, '--root', root], { reject: false, timeout: 120_000, stdin: 'ignore' });
    let exited = false;
    void destroy.then(() => (exited = true));
    // Stopped once it has removed some of the directory's files, and before it is done with them.
    const moved = join(root, `.${name}.race`);
    let stopped = false;
    const deadline = Date.now() + 60_000;
    while (!exited && Date.now() < deadline) {
      const removing = readdirSync(root).find((entry) => entry.startsWith(`.removing-${name}-`));
      const inside = removing === undefined ? -1 : count(join(root, removing, 'wlayer/race'));
      if (inside >= 0 && inside < FILES - 100) {
        process.kill(destroy.pid!, 'SIGSTOP');
        // Once stopped, the swap: the directory goes, a symlink to the victim takes its name.
        renameSync(join(root, removing!, 'wlayer/race'), moved);
        symlinkSync(victim, join(root, removing!, 'wlayer/race'));
        stopped = true;
        break;
      }
    }
    assert.ok(stopped, 'destroy was stopped inside the directory (it walks 20000 files)');
    process.kill(destroy.pid!, 'SIGCONT');
    assert.ok(await eventually(() => exited, 60_000), 'destroy is done');
    cleanup.add(() => sh('rm', ['-rf', moved]));
    assert.is(count(victim), FILES, `destroy removed ${FILES - count(victim)} files of ${victim}, outside the container, through the symlink`);
    // And the removal is done: the symlink is unlinked, the directory it replaced was emptied where it was moved to.
    const result = await destroy;
    assert.is(result.exitCode, 0, `destroy finished: ${result.stderr}`);
    assert.equal(readdirSync(root).filter((entry) => entry === name || entry.startsWith(`.removing-${name}-`)), [], 'nothing of the container is left');
    assert.is(count(moved), 0, 'the directory renamed away mid-walk was emptied');
  });
}

removal.run();
