import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { familiesToLook, familiesToRemove } from '../../../src/forward/apply.js';

test('a stop looks for an unrecorded container\'s rules only when its state publishes: IPv4, and IPv6 with an address and a bridge that has IPv6', () => {
  const state = { publish: ['8080:80'], ip6: 'fd00::5', bridge: 'lxcbr0' };
  assert.equal(familiesToLook({ ...state, publish: [] }, true), [], 'no ports: no iptables at all');
  assert.equal(familiesToLook({ ...state, ip6: null }, true), [4]);
  assert.equal(familiesToLook(state, true), [4, 6]);
  assert.equal(familiesToLook(state, false), [4], 'a bridge (or a host) without IPv6 runs no ip6tables');
  assert.equal(familiesToLook({ ...state, publish: ['[::]:8080:80'] }, true), [4, 6], 'the state decides whether to look, not where the rules are');
});

test('a removal touches the recorded families, the ones seen installed, and the looked-at ones only when nothing is recorded', () => {
  assert.equal(familiesToRemove([4], {}), [4]);
  assert.equal(familiesToRemove([6], { unrecorded: [4, 6] }), [6], 'recorded by this version\'s start: the record says it all');
  assert.equal(familiesToRemove([], { unrecorded: [4] }), [4], 'nothing recorded (a start by 0.2): the live ruleset is read');
  assert.equal(familiesToRemove([], { unrecorded: [4, 6] }), [4, 6]);
  assert.equal(familiesToRemove([], {}), [], 'nothing recorded and nothing to look at: nothing');
  assert.equal(familiesToRemove([4], { installed: [6] }), [4, 6], 'reload saw it installed on IPv6');
});

test.run();
