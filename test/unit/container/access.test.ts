// A container directory's access: root's alone, or searchable by an unprivileged container's own root.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { directoryAccess } from '../../../src/container/access.js';

test("a privileged container's directory is root's alone", () => {
  assert.equal(directoryAccess(null), { mode: 0o700, gid: 0 });
});

test("an unprivileged container's directory is searchable, not listable, by its root's host gid", () => {
  assert.equal(directoryAccess('165536:65536'), { mode: 0o710, gid: 165536 });
});

test.run();
