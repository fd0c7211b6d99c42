// End to end: the installation and node binary that thin containers' hooks run as root must be root's alone.
// A copy of the built installation (dist, package.json, templates) whose parent directory its group may write,
// or a user owns, and a node binary in a user's directory, are refused by create, update and refresh, with one
// line naming the path and the fix, and nothing is left behind.
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, lchownSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { containerSuite, removeLxcContainer, thinLxc, uniqueName, type Ran } from '../helpers/host.js';
import { CLI, REPO } from '../helpers/paths.js';

const { tests: installation, runnable, cleanup, base, root } = await containerSuite('only a root-owned installation and node are written into hook lines', 'ibase');

if (runnable) {
  const work = mkdtempSync('/tmp/thin-lxc-install-');
  const parent = join(work, 'parent');
  const copy = join(parent, 'thin-lxc');
  const run = async (node: string, cli: string, args: string[]): Promise<Ran> => {
    const result = await execa(node, [cli, ...args], { reject: false, timeout: 60_000, stdin: 'ignore' });
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
  };
  let made = '';
  let config = '';

  installation.before(() => {
    cleanup.add(() => rmSync(work, { recursive: true, force: true }));
    mkdirSync(copy, { recursive: true, mode: 0o755 });
    chmodSync(work, 0o755);
    for (const part of ['dist', 'package.json', 'templates']) cpSync(join(REPO, part), join(copy, part), { recursive: true });
  });

  installation('a good installation makes the container the bad ones are then tried on', async () => {
    made = uniqueName('made');
    cleanup.add(() => removeLxcContainer(made));
    const created = await run(process.execPath, join(copy, 'dist/bin/cli.js'), ['create', made, '--base', base, '--root', root]);
    assert.is(created.exitCode, 0, created.stderr);
    config = readFileSync(join(root, made, 'image/config'), 'utf8');
    assert.match(config, `${copy}/dist/hooks/thin-lxc-mount.js`);
  });

  /** create, update and refresh with `node` and `cli`: each refused with `message`, nothing made or changed. */
  const refusedEverywhere = async (node: string, cli: string, message: string) => {
    const name = uniqueName('bad');
    cleanup.add(() => removeLxcContainer(name));
    for (const args of [
      ['create', name, '--base', base, '--root', root],
      ['update', made, '--root', root, '-p', '48123:80'],
      ['refresh', made, '--root', root],
    ]) {
      const refused = await run(node, cli, args);
      assert.is(refused.exitCode, 2, `${args[0]}: ${refused.stdout}${refused.stderr}`);
      assert.is(refused.stderr.trim().split('\n').length, 1, `${args[0]}: one line`);
      assert.match(refused.stderr, message, args[0]);
    }
    assert.not.ok(existsSync(join(root, name)), 'no container directory');
    assert.not.ok(existsSync(join('/var/lib/lxc', name)), 'no registration');
    assert.is(readFileSync(join(root, made, 'image/config'), 'utf8'), config, 'the existing container is unchanged');
  };

  installation("scripts/install.sh (the quick start's install) makes a root-owned copy outside the clone that create accepts", async () => {
    const prefix = join(work, 'prefix');
    const installed = await execa('bash', [join(REPO, 'scripts/install.sh')], { reject: false, env: { ...process.env, PREFIX: prefix } });
    assert.is(installed.exitCode, 0, String(installed.stderr));
    const bin = join(prefix, 'bin/thin-lxc');
    const name = uniqueName('inst');
    cleanup.add(() => removeLxcContainer(name));
    const created = await execa(bin, ['create', name, '--base', base, '--root', root], { reject: false, timeout: 60_000, stdin: 'ignore' });
    assert.is(created.exitCode, 0, String(created.stderr));
    assert.match(readFileSync(join(root, name, 'image/config'), 'utf8'), `${prefix}/lib/thin-lxc/dist/hooks/thin-lxc-mount.js`, 'its hooks are the copy\'s, not the clone\'s');
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
    // man finds its page beside the command on PATH; setup finds the completion script to install.
    const man = await execa('man', ['-w', 'thin-lxc'], { reject: false, env: { PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}` } });
    assert.is(man.exitCode, 0, String(man.stderr));
    assert.is(realpathSync(String(man.stdout).trim()), realpathSync(join(prefix, 'lib/thin-lxc/docs/thin-lxc.1')));
    assert.is(readFileSync(join(prefix, 'lib/thin-lxc/completion/thin-lxc.bash'), 'utf8'), readFileSync(join(REPO, 'completion/thin-lxc.bash'), 'utf8'));
  });

  installation('an installation whose parent directory its group may write is refused by create, update and refresh', async () => {
    chmodSync(parent, 0o775);
    try {
      await refusedEverywhere(process.execPath, join(copy, 'dist/bin/cli.js'), `thin-lxc: ${parent} is writable by its group, and thin-lxc's hooks in ${copy} run as root: chown root:root ${parent} && chmod go-w ${parent}`);
    } finally {
      chmodSync(parent, 0o755);
    }
  });

  installation('an installation whose parent directory a user owns is refused by create, update and refresh', async () => {
    chownSync(parent, 1000, 1000);
    try {
      await refusedEverywhere(process.execPath, join(copy, 'dist/bin/cli.js'), `thin-lxc: ${parent} is owned by uid 1000, not root, and thin-lxc's hooks in ${copy} run as root`);
    } finally {
      chownSync(parent, 0, 0);
    }
  });

  /** A file nobody (uid 65534) owns and may change, to point a root-owned symlink at. */
  const nobodysFile = () => {
    const evil = join(work, 'evil.js');
    writeFileSync(evil, "require('node:fs').writeFileSync('/tmp/thin-lxc-evil-ran', '');\n", { mode: 0o644 });
    chownSync(evil, 65534, 65534);
    return evil;
  };

  installation("an installation whose hook is a root-owned symlink to a file another user owns is refused by create, update and refresh", async () => {
    const hook = join(copy, 'dist/hooks/thin-lxc-mount.js');
    renameSync(hook, `${hook}.real`);
    symlinkSync(nobodysFile(), hook);
    lchownSync(hook, 0, 0);
    try {
      await refusedEverywhere(process.execPath, join(copy, 'dist/bin/cli.js'), `thin-lxc: ${hook} is a symlink, which thin-lxc never installs, and thin-lxc's hooks run it as root`);
    } finally {
      rmSync(hook, { force: true });
      renameSync(`${hook}.real`, hook);
    }
  });

  installation('scripts/install.sh refuses a clone whose dist holds a symlink, and installs nothing', async () => {
    const clone = join(work, 'clone');
    mkdirSync(clone, { mode: 0o755 });
    for (const part of ['dist', 'package.json', 'templates', 'scripts']) cpSync(join(REPO, part), join(clone, part), { recursive: true });
    const hook = join(clone, 'dist/hooks/thin-lxc-mount.js');
    rmSync(hook);
    symlinkSync(nobodysFile(), hook);
    const prefix = join(work, 'prefix-linked');
    const installed = await execa('bash', [join(clone, 'scripts/install.sh')], { reject: false, env: { ...process.env, PREFIX: prefix } });
    assert.is(installed.exitCode, 1, `${installed.stdout}${installed.stderr}`);
    assert.is(String(installed.stderr).trim().split('\n').length, 1, 'one line');
    assert.match(String(installed.stderr), 'install: dist/hooks/thin-lxc-mount.js is a symlink');
    assert.not.ok(existsSync(join(prefix, 'lib/thin-lxc')), 'nothing installed');
  });

  installation("a node binary in a user's directory is refused by create, update and refresh", async () => {
    const nodeDir = join(work, 'node-bin');
    mkdirSync(nodeDir, { mode: 0o755 });
    const node = join(nodeDir, 'node');
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
    chownSync(nodeDir, 1000, 1000);
    await refusedEverywhere(node, CLI, `thin-lxc: ${nodeDir} is owned by uid 1000, not root, and thin-lxc's hooks run ${node} as root`);
    assert.is((await thinLxc(['destroy', made, '--root', root])).exitCode, 0);
  });
}

installation.run();
