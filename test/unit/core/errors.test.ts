// One line for the user, whatever failed; the stack only with --debug.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommandError, formatError, isNoSpace, noSpaceLeft, UserError } from '../../../src/core/errors.js';

test('errors: one line without --debug, the stack with it', () => {
  assert.is(formatError(new UserError('name is empty: use letters'), false), 'thin-lxc: name is empty: use letters');
  assert.is(formatError(new CommandError(['mount', '-t', 'overlay'], 32, 'mount: wrong fs type\n'), false), 'thin-lxc: mount -t overlay failed: mount: wrong fs type');
  assert.is(formatError(new TypeError('x is undefined\n  at y'), false), 'thin-lxc: unexpected error: x is undefined (run again with --debug for details)');
  assert.ok(formatError(new UserError('boom'), true).includes('\n    at '));
});

test('errors: a full filesystem is ENOSPC from a call of ours, or a command saying so anywhere in its stderr', () => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  assert.ok(isNoSpace(enospc));
  const rsync = 'rsync: [receiver] write failed on "/x/rootfs/bin/busybox": No space left on device (28)\nrsync error: error in file IO (code 11) at receiver.c(380)\n';
  assert.ok(isNoSpace(new CommandError(['rsync'], 11, rsync)));
  assert.not.ok(isNoSpace(new CommandError(['rsync'], 23, 'rsync: some files vanished\n')));
  assert.not.ok(isNoSpace(Object.assign(new Error('EACCES'), { code: 'EACCES' })));
  assert.not.ok(isNoSpace(undefined));
  const said = noSpaceLeft('/srv/root', 'thin container web1 was not created', 'or create it with --root on another filesystem', enospc);
  assert.ok(said instanceof UserError);
  assert.is(formatError(said, false), 'thin-lxc: no space left on the filesystem of /srv/root (thin container web1 was not created): free space there, or create it with --root on another filesystem');
});

test('errors: a full quota (EDQUOT, or a command saying so) is told as a full quota, not as a full filesystem', () => {
  const edquot = Object.assign(new Error('EDQUOT: disk quota exceeded, write'), { code: 'EDQUOT' });
  assert.ok(isNoSpace(edquot));
  assert.ok(isNoSpace(new CommandError(['rsync'], 11, 'rsync: write failed on "/x/rootfs/a": Disk quota exceeded (122)\n')));
  const said = noSpaceLeft('/srv/root/web1', 'thin container web1 was not updated', 'then update it again', edquot);
  assert.is(formatError(said, false), 'thin-lxc: a disk quota is full on the filesystem of /srv/root/web1 (thin container web1 was not updated): free space under that quota or raise it (update --disk, setquota), then update it again');
  const rsyncSaid = noSpaceLeft('/srv/lxc/gold', 'the new base gold was not made', 'or commit with --lxcpath on another filesystem', new CommandError(['rsync'], 11, 'write failed: Disk quota exceeded (122)\n'));
  assert.ok(formatError(rsyncSaid, false).startsWith('thin-lxc: a disk quota is full on the filesystem of /srv/lxc/gold ('));
});

// From review r3: a removal's error names what root inside a container named (a folder, an immutable file), and the
// warnings and errors are written to the admin's terminal, which takes C1 controls (U+0080-U+009F: CSI, OSC) as ESC [ / ESC ].
test('a message never carries C1 control characters to the terminal (a name root inside a container chose)', () => {
  const name = '/containers/.removing-web-1/wlayer/\u009b2J\u009d0;owned\u009c';
  const shown = formatError(new UserError(`${name} kept changing while web was being removed`), false);
  assert.not.match(shown, /[\u0080-\u009f]/, `the message carries C1 controls: ${JSON.stringify(shown)}`);
});

test.run();
