// End to end for the --json interface: every command that takes --json, run on one real thin container (one
// start, for a change diff can report), prints exactly the fields docs/json.md documents for it, with their types.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { attach, containerSuite, must, removeLxcContainer, startContainer, thinLxc, uniqueName } from '../helpers/host.js';
import { documentedSections, fieldsOf, mismatches } from '../helpers/json-doc.js';

const { tests: json, runnable, cleanup, base, root } = await containerSuite('--json output against docs/json.md', 'jbase');

if (runnable) {
  const sections = documentedSections();
  /** The outputs (their doc's section) that this run checked: every section must be among them. */
  const checked = new Set<string>();

  /** Runs thin-lxc with --json, expects exit 0 and returns the parsed document. */
  async function jsonOf(args: readonly string[]): Promise<unknown> {
    const ran = await thinLxc([...args, '--root', root, '--json']);
    assert.is(ran.exitCode, 0, `thin-lxc ${args.join(' ')} --json: ${ran.stderr}`);
    return JSON.parse(ran.stdout) as unknown;
  }

  /** Checks one object against the fields of `section` (and of the sections it builds on). */
  function holds(object: unknown, section: string, ...builtOn: string[]): Record<string, unknown> {
    assert.equal(mismatches(object, fieldsOf(sections, section, ...builtOn)), [], `--json of ${section} against docs/json.md`);
    checked.add(section);
    for (const key of builtOn) checked.add(key);
    return object as Record<string, unknown>;
  }

  json('create, update, list, show, diff, commit and destroy print exactly the fields docs/json.md documents, with their types', async () => {
    const name = uniqueName('json');
    const image = uniqueName('jimg');
    cleanup.add(() => removeLxcContainer(name));
    cleanup.add(() => removeLxcContainer(image));
    const data = mkdtempSync('/tmp/thin-lxc-test-data-');
    cleanup.add(() => must('rm', ['-rf', data]));
    const port = 57_000 + Math.floor(Math.random() * 8_000);
    // Options that fill fields which are null without them: ports, a mount, limits, a disk limit.
    const spec = ['create', name, '--base', base, '-p', `${port}:80`, '-m', `${data}:/data:ro`, '--memory', '64M', '--cpus', '0.5', '--disk', '64M'];

    const planned = holds(await jsonOf([...spec, '--dry-run']), 'create --dry-run', 'create', 'the container summary');
    assert.equal([planned.changed, planned.action], [true, 'create']);
    const created = holds(await jsonOf(spec), 'create', 'the container summary');
    assert.equal([created.changed, created.action, created.name, created.diskMode], [true, 'created', name, 'image']);
    const again = holds(await jsonOf(spec), 'create', 'the container summary');
    assert.equal([again.changed, again.action], [false, 'unchanged']);

    const wouldUpdate = holds(await jsonOf(['update', name, '-p', `${port + 1}:81`, '--dry-run']), 'update', 'the container summary');
    assert.equal([wouldUpdate.changed, wouldUpdate.action], [true, 'update']);
    const updated = holds(await jsonOf(['update', name, '--autostart', '-m', `${data}:/more`]), 'update', 'the container summary');
    assert.equal([updated.changed, updated.action, updated.autostart], [true, 'updated', true]);

    assert.is((await startContainer(name)).exitCode, 0);
    await attach(name, 'echo written > /json-test');
    const listed = (await jsonOf(['list'])) as unknown[];
    assert.ok(Array.isArray(listed) && listed.length > 0, 'list --json is a list with the container in it');
    for (const entry of listed) holds(entry, 'list');
    const shown = holds(await jsonOf(['show', name]), 'show');
    assert.equal([shown.state, typeof shown.diskUsedBytes], ['RUNNING', 'number']);
    await must('lxc-stop', ['-n', name]);

    const changes = (await jsonOf(['diff', name])) as unknown[];
    assert.ok(Array.isArray(changes), 'diff --json is a list');
    assert.ok(changes.some((change) => (change as { path?: string }).path === '/json-test'), `diff lists /json-test: ${JSON.stringify(changes)}`);
    for (const change of changes) holds(change, 'diff');

    const wouldCommit = holds(await jsonOf(['commit', name, image, '--dry-run']), 'commit --dry-run');
    assert.equal([wouldCommit.action, wouldCommit.name], ['commit', image]);
    const committed = holds(await jsonOf(['commit', name, image]), 'commit');
    assert.equal([committed.action, committed.dir], ['committed', join('/var/lib/lxc', image)]);

    const wouldDestroy = holds(await jsonOf(['destroy', name, '--dry-run']), 'destroy');
    assert.equal([wouldDestroy.changed, wouldDestroy.action], [true, 'destroy']);
    const destroyed = holds(await jsonOf(['destroy', name]), 'destroy');
    assert.equal([destroyed.changed, destroyed.action], [true, 'destroyed']);
    const absent = holds(await jsonOf(['destroy', name, '--force']), 'destroy');
    assert.equal([absent.changed, absent.action], [false, 'absent']);

    assert.equal([...sections.keys()].filter((section) => !checked.has(section)), [], 'every section of docs/json.md was checked against real output');
  });
}

json.run();
