import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { candidates, completionRequest, visibleCommands } from '../../../src/cli/completion.js';
import { makeProgram } from '../../../src/cli/main.js';

const program = makeProgram({}, '/', false);
const ask = (line: string) => completionRequest(program, line.split(' '));
const offered = (line: string, names: string[] = ['web1', 'web2', 'db']) => candidates(ask(line), () => names);

test('the first word is a command (aliases too, not the hidden one) or help', () => {
  assert.equal(offered(''), [...visibleCommands(program), 'help']);
  assert.ok(offered('').includes('ls'));
  assert.not.ok(offered('').some((word) => word.startsWith('__')));
  assert.equal(offered('de'), ['destroy']);
  assert.equal(offered('help cr'), ['create']);
});

test("options: the command's own and the global ones, only long forms, and --help", () => {
  const create = offered('create web1 --');
  for (const flag of ['--base', '--publish', '--dry-run', '--root', '--lxcpath', '--help', '--unprivileged']) assert.ok(create.includes(flag), flag);
  assert.equal(offered('destroy x --f'), ['--force']);
  assert.equal(offered('update x --no'), ['--no-autostart']);
  assert.equal(offered('--r'), ['--root']);
});

test('a thin container where a command takes one, and not where it takes a new name', () => {
  for (const line of ['destroy ', 'update ', 'show ', 'diff ', 'commit ', 'refresh ', 'refresh web1 ', 'destroy --force w', 'update -p 80:80 8081:81 --memory 1G ']) {
    assert.is(ask(line).wanted.kind, 'containers', line);
  }
  assert.equal(offered('destroy w'), ['web1', 'web2']);
  assert.equal(offered('commit web1 '), []);
  assert.equal(offered('create '), []);
  assert.equal(offered('list '), []);
});

test('after --base, LXC containers; --base=, the same behind it; paths for --root; choices for --fs', () => {
  assert.is(ask('create web1 --base ').wanted.kind, 'bases');
  assert.is(ask('create web1 -b ').wanted.kind, 'bases');
  assert.equal(offered('create web1 --base=w'), ['--base=web1', '--base=web2']);
  assert.equal(ask('create --root /t').wanted, { kind: 'files' });
  assert.is(ask('create --root /t').current, '/t');
  assert.equal(offered('create x --fs '), ['overlay', 'aufs']);
});

test('--root and --lxcpath on the line say where to read containers from, before or after the command', () => {
  assert.equal(ask('--root /srv/thin destroy ').root, '/srv/thin');
  const request = ask('destroy --root=/srv/thin --lxcpath /srv/lxc ');
  assert.equal([request.root, request.lxcpath], ['/srv/thin', '/srv/lxc']);
  assert.is(ask('create x --base ').root, undefined);
});

test('names that fail name validation are never offered: a hostile state file or LXC directory cannot type shell text', () => {
  const hostile = ['web1 `touch /tmp/tltf3pwned` && echo hi', 'w$(id)', "w'q", 'w;x', 'w x', 'w..x', 'w\tx', `w${'a'.repeat(63)}`];
  assert.equal(offered('destroy w', ['web1', ...hostile]), ['web1']);
  assert.equal(offered('create x --base w', ['web1', ...hostile]), ['web1']);
  assert.equal(offered('create x --base=w', ['web1', ...hostile]), ['--base=web1']);
});

test.run();
