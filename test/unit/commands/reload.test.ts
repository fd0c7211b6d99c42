// What reload does for one container, from LXC's state, whether it has ports to forward, and what iptables has.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { reloadAction } from '../../../src/commands/reload.js';

test('a container whose init is alive keeps its forwarding: running, frozen, starting, stopping', () => {
  for (const state of ['RUNNING', 'FROZEN', 'FREEZING', 'THAWED', 'STARTING', 'STOPPING', 'ABORTING'] as const) {
    assert.is(reloadAction(state, true, true), 'apply', state);
    assert.is(reloadAction(state, true, false), 'apply', `${state}, its rules flushed`);
  }
});

test('removal follows what iptables has: a stopped one, one LXC does not know, or one that publishes nothing now', () => {
  assert.is(reloadAction('STOPPED', true, true), 'remove');
  assert.is(reloadAction(undefined, true, true), 'remove');
  assert.is(reloadAction('RUNNING', false, true), 'remove', 'running, its state no longer publishes');
  assert.is(reloadAction('FROZEN', false, true), 'remove');
});

test('nothing installed and nothing to forward: nothing to do', () => {
  assert.is(reloadAction('STOPPED', true, false), 'none');
  assert.is(reloadAction('RUNNING', false, false), 'none');
  assert.is(reloadAction(undefined, false, false), 'none');
});

test.run();
