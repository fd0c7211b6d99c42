// The release users install: npm pack of a fresh clone, npm install -g of the tarball (with --prefix DIR and
// to npm's default prefix), then setup, create, start, forward, stop and destroy from the installed copy, its man
// page and its Tab completion; and
// containers made by a copy that is gone, refreshed by the new one. npm runs --offline: the tarball has no
// dependencies, and the clone's npm ci uses the cache the repository's own npm ci filled.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { BASH_COMPLETION } from '../../src/commands/setup.js';
import { tabCompletions } from '../helpers/completion.js';
import { REPO } from '../helpers/paths.js';
import { containerSuite, must, removeLxcContainer, sh, startContainer, tagOf, uniqueName, type Ran } from '../helpers/host.js';
import { giveSocat, request, rulesLeftAfterStop, startServers } from '../helpers/net.js';
import { skipUnless } from '../helpers/skip.js';

const { tests: release, runnable, cleanup, base, root } = await containerSuite('the release users install', 'pbase');

if (runnable) {
  const work = mkdtempSync('/tmp/thin-lxc-package-');
  const port = 37_000 + Math.floor(Math.random() * 4_000);
  let tarball = '';
  let prefixBin = '';
  const npm = (args: string[], cwd: string) => must('npm', [...args, '--offline', '--no-audit', '--no-fund', '--loglevel=error'], 300_000).catch((error: Error) => {
    throw new Error(`npm ${args.join(' ')} in ${cwd}: ${error.message}`);
  });
  const run = async (bin: string, args: string[]): Promise<Ran> => {
    const result = await execa(bin, args, { reject: false, timeout: 60_000, stdin: 'ignore' });
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
  };

  /** What a user does with the command the package installed: every step must work from the installed copy. */
  const lifeCycle = async (bin: string, label: string, hostPort: number) => {
    const installed = join(bin, '../../lib/node_modules/thin-lxc');
    assert.is((await run(bin, ['setup'])).exitCode, 0, `${label}: setup`);
    const name = uniqueName(label);
    cleanup.add(() => removeLxcContainer(name));
    const created = await run(bin, ['create', name, '--base', base, '--root', root, '-p', `${hostPort}:80`]);
    assert.is(created.exitCode, 0, `${label}: ${created.stderr}`);
    const config = (await must('cat', [join(root, name, 'image/config')])).split('\n');
    assert.ok(config.some((line) => line.startsWith('lxc.hook.pre-mount = ') && line.includes(`${installed}/dist/hooks/thin-lxc-mount.js`)), `${label}: its hooks are the installed copy's`);
    giveSocat(join(root, name));
    const tag = tagOf(join(root, name));
    assert.is((await startContainer(name)).exitCode, 0, `${label}: start`);
    await startServers(name);
    assert.is(await request('127.0.0.1', hostPort), `tcp-${name}`, `${label}: forward`);
    await must('lxc-stop', ['-n', name, '-k']);
    // Its own rules only: a user's own thin containers on this host have theirs.
    assert.equal(await rulesLeftAfterStop(new RegExp(tag)), [], `${label}: stop removes its forwarding`);
    assert.equal(await tabCompletions(BASH_COMPLETION, `thin-lxc --root ${root} destroy ${name.slice(0, -1)}`, { PATH: onPath(bin) }), [name], `${label}: Tab`);
    assert.is((await run(bin, ['destroy', name, '--root', root])).exitCode, 0, `${label}: destroy`);
    assert.not.ok(existsSync(join(root, name)));
  };

  /** PATH with the installed command first, as after npm install -g to that prefix. */
  const onPath = (bin: string) => `${dirname(bin)}:${process.env.PATH ?? ''}`;

  /** man finds the page npm linked into the prefix (man-db looks in ../share/man beside each PATH entry), and the installed command completes. */
  const manAndTab = async (bin: string, label: string) => {
    const env = { PATH: onPath(bin) };
    const where = await execa('man', ['-w', 'thin-lxc'], { env, reject: false });
    assert.is(where.exitCode, 0, `${label}: man -w: ${String(where.stderr)}`);
    assert.is(realpathSync(String(where.stdout).trim()), join(realpathSync(dirname(bin)), '../lib/node_modules/thin-lxc/docs/thin-lxc.1'), `${label}: man -w`);
    const page = await execa('sh', ['-c', 'man thin-lxc | grep -c -e "--unpublish" -e "thin-lxc setup"'], { env: { ...env, MANPAGER: 'cat', MANWIDTH: '100' }, reject: false });
    assert.ok(Number(String(page.stdout)) >= 2, `${label}: man thin-lxc | grep: ${String(page.stdout)} ${String(page.stderr)}`);
    assert.is(readFileSync(BASH_COMPLETION, 'utf8'), readFileSync(join(dirname(bin), '../lib/node_modules/thin-lxc/completion/thin-lxc.bash'), 'utf8'), `${label}: setup installed its completion`);
    assert.equal(await tabCompletions(BASH_COMPLETION, 'thin-lxc des', { PATH: onPath(bin) }), ['destroy'], `${label}: Tab`);
    assert.equal(await tabCompletions(BASH_COMPLETION, `thin-lxc create x --base ${base}`, { PATH: onPath(bin) }), [base], `${label}: Tab after --base`);
  };

  release.before(async () => {
    cleanup.add(() => rmSync(work, { recursive: true, force: true }));
    const clone = join(work, 'clone');
    await must('git', ['clone', '--quiet', '--no-hardlinks', REPO, clone]);
    await execa('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: clone, timeout: 300_000 });
    await execa('npm', ['pack', '--silent', '--pack-destination', work], { cwd: clone, timeout: 300_000 });
    tarball = join(work, readdirSync(work).find((file) => file.endsWith('.tgz')) ?? 'none.tgz');
    await npm(['install', '-g', '--prefix', join(work, 'prefix'), tarball], work);
    prefixBin = join(work, 'prefix/bin/thin-lxc');
  });

  release('npm pack of a fresh clone builds first and ships the command, its hooks and template, with no dependencies', async () => {
    const files = (await must('tar', ['-tzf', tarball])).split('\n');
    for (const file of ['dist/bin/cli.js', 'dist/bin/thin-lxc.js', 'dist/bin/handlebars.js', 'templates/config.hbs', 'docs/thin-lxc.1', 'completion/thin-lxc.bash', ...['mount', 'destroy', 'clone', 'ports-up', 'ports-down'].map((hook) => `dist/hooks/thin-lxc-${hook}.js`)]) {
      assert.ok(files.includes(`package/${file}`), file);
    }
    assert.not.ok(files.some((file) => file.startsWith('package/dist/test/') || file.startsWith('package/dist/src/')), 'nothing that does not run');
    const manifest = JSON.parse(await must('tar', ['-xzOf', tarball, 'package/package.json'])) as { dependencies?: object };
    assert.is(manifest.dependencies, undefined);
  });

  release('npm install -g --prefix DIR: setup, create, start, forward, stop and destroy work from the installed copy', async () => {
    assert.match((await run(prefixBin, ['--version'])).stdout, /^\d+\.\d+\.\d+$/);
    await lifeCycle(prefixBin, 'prefix', port);
    await manAndTab(prefixBin, 'prefix');
  });

  const globalPrefix = spawnSync('npm', ['prefix', '-g'], { encoding: 'utf8' }).stdout.trim();
  const taken = existsSync(join(globalPrefix, 'lib/node_modules/thin-lxc')) || existsSync(join(globalPrefix, 'bin/thin-lxc'));
  const defaultPrefix = skipUnless(release, "npm install -g to npm's default prefix", !taken, `${globalPrefix} has a thin-lxc installed already, which this test would replace`);
  if (defaultPrefix) release("npm install -g to npm's default prefix: the same; and it refreshes containers a removed copy made", async () => {
    cleanup.add(() => sh('npm', ['uninstall', '-g', 'thin-lxc', '--offline', '--loglevel=error']));
    await npm(['install', '-g', tarball], work);
    const bin = join(globalPrefix, 'bin/thin-lxc');
    await lifeCycle(bin, 'global', port + 1);
    await manAndTab(bin, 'global');

    // A container made by the --prefix copy, which is then removed (reinstalled elsewhere).
    const orphan = uniqueName('orphan');
    cleanup.add(() => removeLxcContainer(orphan));
    assert.is((await run(prefixBin, ['create', orphan, '--base', base, '--root', root])).exitCode, 0);
    rmSync(join(work, 'prefix'), { recursive: true, force: true });
    const doctor = await run(bin, ['doctor', '--root', root]);
    assert.is(doctor.exitCode, 1);
    // The line names every thin container on the host whose hooks are not this copy's: a user's own too.
    const hooks = doctor.stdout.split('\n').find((line) => line.startsWith("FAIL  containers' hooks  ")) ?? '';
    assert.match(hooks, `${orphan}: its hooks are in ${join(work, 'prefix')}/lib/node_modules/thin-lxc/dist/hooks, which is missing`);
    assert.ok(hooks.endsWith(': thin-lxc refresh'), hooks);
    // Named: refresh alone would point every thin container on the host at this copy, which the test then removes.
    assert.is((await run(bin, ['refresh', orphan, '--root', root])).exitCode, 0);
    assert.is((await startContainer(orphan)).exitCode, 0, 'it starts with the hooks of the copy installed now');
    await must('lxc-stop', ['-n', orphan, '-k']);
    assert.is((await run(bin, ['destroy', orphan, '--root', root])).exitCode, 0);
    assert.is((await sh('npm', ['uninstall', '-g', 'thin-lxc', '--offline', '--loglevel=error'])).exitCode, 0);
    assert.not.ok(existsSync(bin));
  });
}

release.run();
