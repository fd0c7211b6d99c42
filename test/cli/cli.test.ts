// The built CLI as a process: exit codes and what a user reads. Needs no LXC.
import { accessSync, constants, readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { CLI } from '../helpers/paths.js';
import { temporaryRoot, thinLxc } from '../helpers/host.js';
import { rmSync } from 'node:fs';

test('--version prints the package version', async () => {
  const result = await thinLxc(['--version']);
  assert.is(result.exitCode, 0);
  assert.match(result.stdout.trim(), /^\d+\.\d+\.\d+$/);
});

test('--help lists the commands and shows examples, including the original form', async () => {
  const result = await thinLxc(['--help']);
  assert.is(result.exitCode, 0);
  for (const text of ['create [options] [name]', 'destroy [options] <id-or-name>', 'list|ls', 'show', 'reload', 'Examples:', '-a create -b /var/lib/lxc/base1']) {
    assert.ok(result.stdout.includes(text), text);
  }
});

test('an unknown option is one line with a pointer to --help', async () => {
  const result = await thinLxc(['list', '--bogus']);
  assert.is(result.exitCode, 1);
  assert.is(result.stderr, "thin-lxc: unknown option '--bogus' (run thin-lxc --help for usage)");
});

test('create without a name says how to give one', async () => {
  const root = temporaryRoot();
  try {
    const result = await thinLxc(['create', '--base', 'x', '--root', root]);
    if (process.getuid?.() !== 0) return;
    assert.is(result.exitCode, 2);
    assert.is(result.stderr.trim(), 'thin-lxc: create needs a name: thin-lxc create NAME --base BASE');
    assert.equal(readdirSync(root), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a non-root user is told to use sudo, without a stack trace', async () => {
  try {
    accessSync(CLI, constants.R_OK);
  } catch {
    return;
  }
  const asNobody = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'list'], { reject: false });
  if (asNobody.stderr.includes('EACCES') || asNobody.exitCode === 127) {
    console.log('SKIPPED non-root check: the build is not readable by nobody here');
    return;
  }
  assert.is(asNobody.exitCode, 2);
  assert.is(
    String(asNobody.stderr).trim(),
    'thin-lxc: thin-lxc must run as root (it registers containers with LXC and its hooks mount filesystems): use sudo',
  );
});

test('--debug shows the stack of an error', async () => {
  if (process.getuid?.() !== 0) return;
  const result = await thinLxc(['show', 'nope', '--root', '/tmp/thin-lxc-no-such-root', '--debug']);
  assert.is(result.exitCode, 2);
  assert.match(result.stderr, 'UserError: no thin container');
  assert.match(result.stderr, '    at ');
});

test.run();
