// One line for the user, whatever failed; the stack only with --debug.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommandError, formatError, UserError } from '../../../src/core/errors.js';

test('errors: one line without --debug, the stack with it', () => {
  assert.is(formatError(new UserError('name is empty: use letters'), false), 'thin-lxc: name is empty: use letters');
  assert.is(formatError(new CommandError(['mount', '-t', 'overlay'], 32, 'mount: wrong fs type\n'), false), 'thin-lxc: mount -t overlay failed: mount: wrong fs type');
  assert.is(formatError(new TypeError('x is undefined\n  at y'), false), 'thin-lxc: unexpected error: x is undefined (run again with --debug for details)');
  assert.ok(formatError(new UserError('boom'), true).includes('\n    at '));
});

test.run();
