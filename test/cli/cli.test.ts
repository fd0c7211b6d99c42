// The built CLI as a process: exit codes and what a user reads. Needs no LXC.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI, REPO } from '../helpers/paths.js';
import { serializeState, type ThinState } from '../../src/state/state.js';
import { tabCompletions } from '../helpers/completion.js';
import { temporaryRoot, thinLxc } from '../helpers/host.js';
import { skipUnless } from '../helpers/skip.js';

const asRoot = process.getuid?.() === 0;

test("--version prints package.json's version, CHANGELOG.md's newest", async () => {
  const result = await thinLxc(['--version']);
  assert.is(result.exitCode, 0);
  const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  assert.is(result.stdout.trim(), version);
  const newest = /^## (\d+\.\d+\.\d+) \(\d{4}-\d{2}-\d{2}\)$/m.exec(readFileSync(join(REPO, 'CHANGELOG.md'), 'utf8'))?.[1];
  assert.is(newest, version, "CHANGELOG.md's newest section is this version");
});

test('--help lists the commands and shows examples, including the original form', async () => {
  const result = await thinLxc(['--help']);
  assert.is(result.exitCode, 0);
  for (const text of ['create [options] [name]', 'destroy [options] <id-or-name>', 'list|ls', 'show', 'reload', 'refresh', 'Examples:', '-a create -b /var/lib/lxc/base1']) {
    assert.ok(result.stdout.includes(text), text);
  }
});

test("help COMMAND prints that command's help, as COMMAND --help does", async () => {
  for (const command of ['create', 'destroy', 'setup']) {
    const help = await thinLxc(['help', command]);
    assert.is(help.exitCode, 0, command);
    assert.ok(help.stdout.startsWith(`Usage: thin-lxc ${command} `), help.stdout);
    assert.is(help.stdout, (await thinLxc([command, '--help'])).stdout);
  }
  assert.match((await thinLxc(['help', 'create'])).stdout, '-b, --base <base>');
  assert.not.match((await thinLxc(['--help'])).stdout, '__complete');
});

test('Tab in bash completes commands, options and option values from the built command', async () => {
  const script = join(REPO, 'completion/thin-lxc.bash');
  assert.equal(await tabCompletions(script, `${CLI} des`), ['destroy']);
  assert.equal(await tabCompletions(script, `${CLI} help cr`), ['create']);
  assert.ok((await tabCompletions(script, `${CLI} `)).includes('commit'));
  assert.equal(await tabCompletions(script, `${CLI} create web1 --ba`), ['--base']);
  assert.equal(await tabCompletions(script, `${CLI} destroy web1 --dry`), ['--dry-run']);
  // After = readline replaces only what follows it: the candidates are the value alone.
  assert.equal(await tabCompletions(script, `${CLI} create web1 --fs=ov`), ['overlay']);
  assert.equal(await tabCompletions(script, `${CLI} create web1 --fs `), ['overlay', 'aufs']);
  const dir = mkdtempSync('/tmp/thin-lxc-cli-');
  try {
    mkdirSync(join(dir, 'root-here'));
    assert.equal(await tabCompletions(script, `${CLI} list --root ${dir}/roo`), [`${dir}/root-here`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Tab in bash quotes what it inserts: a candidate with shell metacharacters comes back as one quoted word', async () => {
  const script = join(REPO, 'completion/thin-lxc.bash');
  const dir = mkdtempSync('/tmp/thin-lxc-cli-');
  try {
    // A stand-in thin-lxc whose __complete answers with a hostile word (as an older or damaged one might).
    // Harmless if run: reading an unquoted word back below would run it.
    const hostile = 'web1 `echo pwned` && echo $HOME';
    const fake = join(dir, 'fake-thin-lxc');
    writeFileSync(fake, `#!/bin/sh\nprintf '%s\\n' words ${shellQuote(hostile)} web2\n`);
    chmodSync(fake, 0o755);
    const offered = await tabCompletions(script, `${fake} destroy w`);
    assert.is(offered.length, 2, offered.join(' | '));
    for (const [word, original] of [[offered[0], hostile], [offered[1], 'web2']] as const) {
      // What readline would insert, read back by bash as the line would be: one word, the original text.
      const read = spawnSync('bash', ['--norc', '-c', `set -- ${word}; printf '%s\\n' "$#" "$1"`], { encoding: 'utf8' });
      assert.is(read.stdout, `1\n${original}\n`, `${word} is not one quoted word`);
    }
    assert.is(offered[1], 'web2', 'ordinary names are inserted as they are');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

if (skipUnless(test, 'hostile names in a root (as root)', asRoot, 'reading a root runs as root')) {
  test('__complete never offers a name or id that fails name validation, from a state file or --lxcpath', async () => {
    const root = temporaryRoot();
    const lxcpath = temporaryRoot();
    try {
      const hostile = 'web1 `touch /tmp/tltf3pwned` && echo hi';
      for (const [id, name] of [['good1', 'web1'], ['bad1', hostile], ['w x', 'web2']] as const) {
        mkdirSync(join(root, id));
        writeFileSync(join(root, id, 'thin-lxc.ini'), serializeState({ ...SAMPLE_STATE, id, name }));
      }
      for (const name of ['wbase', 'w`id`', 'w x']) {
        mkdirSync(join(lxcpath, name));
        writeFileSync(join(lxcpath, name, 'config'), '');
      }
      const names = await thinLxc(['__complete', '--', '--root', root, 'destroy', 'w']);
      assert.is(names.stdout, 'words\nweb1\nweb2');
      const bases = await thinLxc(['__complete', '--', '--lxcpath', lxcpath, 'create', 'x', '--base', 'w']);
      assert.is(bases.stdout, 'words\nwbase');
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(lxcpath, { recursive: true, force: true });
    }
  });
}

const SAMPLE_STATE: ThinState = {
  id: 'a', name: 'a', base: '/var/lib/lxc/b', baseName: 'b', fs: 'overlay', layers: ['/var/lib/lxc/b/rootfs'],
  hwaddrs: { '0': '00:16:3e:00:00:01' }, ip: '10.0.3.9', bridge: 'lxcbr0', subnet: '10.0.3.0/24', ip6: null, subnet6: null,
  veth: 'tlx0000beef', publish: [], mounts: [], lxcpath: '/var/lib/lxc', created: '2026-11-29T00:00:00.000Z',
  autostart: false, ephemeral: false, tmpfs: null, memory: null, cpus: null, template: null, disk: null, diskMode: null,
  diskProject: null, diskMount: null, idmap: null, shifted: [],
};

const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

test('an unknown option is one line with a pointer to --help', async () => {
  const result = await thinLxc(['list', '--bogus']);
  assert.is(result.exitCode, 1);
  assert.is(result.stderr, "thin-lxc: unknown option '--bogus' (run thin-lxc --help for usage)");
});

if (skipUnless(test, 'create without a name (as root)', asRoot, 'thin-lxc refuses non-root users before it reads the name')) {
  test('create without a name says how to give one', async () => {
    const root = temporaryRoot();
    try {
      const result = await thinLxc(['create', '--base', 'x', '--root', root]);
      assert.is(result.exitCode, 2);
      assert.is(result.stderr.trim(), 'thin-lxc: create needs a name: thin-lxc create NAME --base BASE');
      assert.equal(readdirSync(root), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}

if (skipUnless(test, 'a sweep that cannot remove a leftover (as root)', asRoot && spawnSync('chattr', ['--help']).status !== 127, 'needs root and chattr')) {
  test("a killed create's leftover that cannot be removed (an immutable file in it) is named in a warning, and the create the user asked for goes on", async () => {
    const sandbox = temporaryRoot();
    const base = join(sandbox, 'base');
    mkdirSync(join(base, 'rootfs/etc'), { recursive: true });
    writeFileSync(join(base, 'config'), `lxc.rootfs.path = dir:${base}/rootfs\nlxc.uts.name = base\n`);
    const root = join(sandbox, 'root');
    const leftover = join(root, '.creating-gone-99999999');
    mkdirSync(leftover, { recursive: true });
    writeFileSync(join(leftover, 'stuck'), '');
    const immutable = spawnSync('chattr', ['+i', join(leftover, 'stuck')]);
    try {
      assert.is(immutable.status, 0, `the check itself: chattr +i works here (${String(immutable.stderr)})`);
      const result = await thinLxc(['create', 'swept', '--base', base, '--root', root, '--lxcpath', join(sandbox, 'lxc')]);
      assert.is(result.exitCode, 0, result.stderr);
      assert.match(result.stderr, `thin-lxc: warning: cannot remove ${leftover}, left by a killed create or destroy: `);
      assert.ok(readdirSync(root).includes('swept'), 'the container was made');
      assert.is((await thinLxc(['destroy', 'swept', '--root', root, '--lxcpath', join(sandbox, 'lxc')])).exitCode, 0);
    } finally {
      spawnSync('chattr', ['-i', join(leftover, 'stuck')]);
      rmSync(sandbox, { recursive: true, force: true });
    }
  });
}

const setpriv = spawnSync('setpriv', ['--version']).status === 0;
if (skipUnless(test, 'the non-root refusal', asRoot && setpriv, asRoot ? 'setpriv (util-linux) is not installed' : 'needs root to switch to nobody')) {
  test('a non-root user is told to use sudo, without a stack trace', () => {
    // A copy of the built command that nobody can read, wherever the repository lives (CI may clone under /root).
    const copy = mkdtempSync('/tmp/thin-lxc-cli-');
    try {
      mkdirSync(join(copy, 'dist'));
      cpSync(dirname(CLI), join(copy, 'dist/bin'), { recursive: true });
      cpSync(join(REPO, 'package.json'), join(copy, 'package.json'));
      chmodSync(copy, 0o755);
      const asNobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(copy, 'dist/bin/cli.js'), 'list'], { encoding: 'utf8' });
      assert.is(asNobody.status, 2, asNobody.stderr);
      assert.is(asNobody.stderr.trim(), 'thin-lxc: thin-lxc must run as root (it registers containers with LXC and its hooks mount filesystems): use sudo');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
}

if (skipUnless(test, 'setup without its completion script (as root)', asRoot, 'setup refuses non-root users first')) {
  test('setup refuses a missing completion script first, before it checks or changes anything else', () => {
    // An installation without completion/: setup must say so before any step (here: reading --ipv6, which
    // comes before lxc-net's files are written), never after it has changed lxc-net's settings.
    const copy = mkdtempSync('/tmp/thin-lxc-cli-');
    try {
      cpSync(join(REPO, 'dist'), join(copy, 'dist'), { recursive: true });
      cpSync(join(REPO, 'package.json'), join(copy, 'package.json'));
      const result = spawnSync(process.execPath, [join(copy, 'dist/bin/cli.js'), 'setup', '--ipv6', 'not-a-prefix'], { encoding: 'utf8' });
      assert.is(result.status, 2, result.stderr);
      assert.is(
        result.stderr.trim(),
        `thin-lxc: ${join(copy, 'completion/thin-lxc.bash')} is missing from thin-lxc's installation: reinstall thin-lxc (npm install -g, or scripts/install.sh)`,
      );
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
}

if (skipUnless(test, '--debug (as root)', asRoot, 'thin-lxc refuses non-root users before it looks for a container')) {
  test('--debug shows the stack of an error', async () => {
    const result = await thinLxc(['show', 'nope', '--root', '/tmp/thin-lxc-no-such-root', '--debug']);
    assert.is(result.exitCode, 2);
    assert.match(result.stderr, 'UserError: no thin container');
    assert.match(result.stderr, '    at ');
  });
}

test.run();
