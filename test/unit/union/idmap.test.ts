import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatIdMap, parseIdMap, shiftDown, shiftUp } from '../../../src/union/idmap.js';

test('parseIdMap reads HOSTID:RANGE and formatIdMap writes it back', () => {
  assert.equal(parseIdMap('100000:65536'), { host: 100000, range: 65536 });
  assert.is(formatIdMap(parseIdMap('200000:1000')), '200000:1000');
});

test('parseIdMap refuses host id 0 (root would be the host\'s), an empty range, ids past 2^32 and anything else', () => {
  for (const text of ['0:65536', '100000:0', '4294967295:1', '4294910000:65536', '100000', '-1:5', '1e5:65536', '100000:65536 ', ' 1:1', '1:1,2']) {
    assert.throws(() => parseIdMap(text), /--idmap/, text);
  }
  assert.equal(parseIdMap('4294901759:65536'), { host: 4294901759, range: 65536 });
});

test('shiftUp maps 0.. to the host range, shiftDown the host range back to 0..', () => {
  assert.equal(shiftUp({ host: 100000, range: 65536 }), { inside: 0, outside: 100000, count: 65536 });
  assert.equal(shiftDown({ host: 100000, range: 65536 }), { inside: 100000, outside: 0, count: 65536 });
});

test.run();
