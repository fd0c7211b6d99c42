// Tab completion in a real bash, with real containers: the names of the suite's own thin containers where a
// command takes one (read from the root given on the line), its LXC base after --base; and setup installing the
// script where bash-completion looks, once.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { BASH_COMPLETION } from '../../src/commands/setup.js';
import { tabCompletions } from '../helpers/completion.js';
import { CLI, REPO } from '../helpers/paths.js';
import { containerSuite, removeLxcContainer, thinLxc, uniqueName } from '../helpers/host.js';

const { tests: completion, runnable, cleanup, base, root } = await containerSuite('bash completion', 'cbase');

if (runnable) {
  const script = join(REPO, 'completion/thin-lxc.bash');
  const web = uniqueName('cweb');
  const other = uniqueName('cother');

  completion.before(async () => {
    for (const name of [web, other]) {
      cleanup.add(() => removeLxcContainer(name));
      const created = await thinLxc(['create', name, '--base', base, '--root', root]);
      assert.is(created.exitCode, 0, created.stderr);
    }
  });

  completion('a thin container of the root on the line, where a command takes one', async () => {
    for (const command of ['destroy', 'update', 'show', 'diff', 'commit', 'refresh']) {
      assert.equal(await tabCompletions(script, `${CLI} --root ${root} ${command} `), [other, web].sort(), command);
    }
    assert.equal(await tabCompletions(script, `${CLI} show --root ${root} ${web.slice(0, -2)}`), [web]);
    assert.equal(await tabCompletions(script, `${CLI} destroy --force --root=${root} ${other}`), [other]);
    // THIN_LXC_ROOT says where, as for the command itself.
    assert.equal(await tabCompletions(script, `${CLI} diff ${web}`, { THIN_LXC_ROOT: root }), [web]);
    // Not where the command wants a new name.
    assert.equal(await tabCompletions(script, `${CLI} --root ${root} create `), []);
    assert.equal(await tabCompletions(script, `${CLI} --root ${root} commit ${web} `), []);
  });

  completion('the LXC containers after --base: the suite\'s base, and a thin container registered with LXC', async () => {
    const bases = await tabCompletions(script, `${CLI} create new1 --root ${root} --base `);
    assert.ok(bases.includes(base), `${base} in ${bases.join(' ')}`);
    assert.ok(bases.includes(web), 'thin containers are LXC containers too');
    assert.equal(await tabCompletions(script, `${CLI} create new1 --base ${base}`), [base]);
    assert.equal(await tabCompletions(script, `${CLI} create new1 -b ${base.slice(0, -1)}`), [base]);
    assert.equal(await tabCompletions(script, `${CLI} create new1 --base=${base}`), [base]);
  });

  completion(`setup installs the script as ${BASH_COMPLETION}, once`, async () => {
    const before = existsSync(BASH_COMPLETION) ? readFileSync(BASH_COMPLETION, 'utf8') : null;
    cleanup.add(() => (before === null ? rmSync(BASH_COMPLETION, { force: true }) : writeFileSync(BASH_COMPLETION, before)));
    writeFileSync(BASH_COMPLETION, '# an older version\n');
    const first = await thinLxc(['setup']);
    assert.is(first.exitCode, 0, first.stderr);
    assert.match(first.stdout, `installed bash completion as ${BASH_COMPLETION}`);
    assert.is(readFileSync(BASH_COMPLETION, 'utf8'), readFileSync(script, 'utf8'));
    const again = await thinLxc(['setup']);
    assert.is(again.exitCode, 0, again.stderr);
    assert.not.match(again.stdout, 'bash completion');
    assert.equal(await tabCompletions(BASH_COMPLETION, `${CLI} --root ${root} destroy `), [other, web].sort());
  });
}

completion.run();
