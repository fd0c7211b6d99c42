// This installation: thin-lxc's hook lines as LXC runs them, and where the installation's files are.
import { chownSync, existsSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { firstUnsafeIn, hookLineFiles, installationPath, pathAndParents, thinHookOf, whoElseCanChange } from '../../../src/lxc/install.js';
import { REPO } from '../../helpers/paths.js';

test("a hook line's node binary and hook file; thin-lxc's hooks told apart from anybody else's", () => {
  const line = '/usr/bin/env -u NODE_OPTIONS /opt/node-18/bin/node /old/dist/hooks/thin-lxc-mount.js /containers/w1';
  assert.equal(hookLineFiles(line), { node: '/opt/node-18/bin/node', hook: '/old/dist/hooks/thin-lxc-mount.js' });
  assert.is(thinHookOf(line), 'mount');
  assert.is(thinHookOf('/usr/share/lxc/hooks/mine'), null);
  assert.is(thinHookOf('/x/thin-lxc-unknown.js /c'), null);
});

test("the installation is the directory with thin-lxc's package.json, wherever the code runs from", () => {
  assert.is(installationPath(), REPO.replace(/\/$/, ''));
  assert.ok(existsSync(installationPath('templates', 'config.hbs')));
});

test('whoElseCanChange: root-owned and not group/other-writable, or a root-owned sticky parent like /tmp', () => {
  const dir = (uid: number, mode: number) => ({ uid, mode: 0o40000 | mode, isDirectory: true, isSymbolicLink: false });
  const file = (uid: number, mode: number) => ({ uid, mode: 0o100000 | mode, isDirectory: false, isSymbolicLink: false });
  assert.is(whoElseCanChange(dir(0, 0o755), true), null);
  assert.is(whoElseCanChange(file(0, 0o644), false), null);
  assert.is(whoElseCanChange(dir(1000, 0o755), true), 'owned by uid 1000, not root');
  assert.is(whoElseCanChange(dir(0, 0o775), true), 'writable by its group');
  assert.is(whoElseCanChange(dir(0, 0o757), true), 'writable by others');
  assert.is(whoElseCanChange(file(0, 0o666), false), 'writable by its group and others');
  assert.is(whoElseCanChange(dir(0, 0o1777), true), null, 'a sticky /tmp above is accepted: nobody else can rename root\'s entries');
  assert.is(whoElseCanChange(dir(0, 0o1777), false), 'writable by its group and others', "but not as the installation's own directory");
  assert.is(whoElseCanChange(dir(1000, 0o1777), true), 'owned by uid 1000, not root', "a user's sticky directory is theirs");
  assert.is(whoElseCanChange(file(0, 0o1666), true), 'writable by its group and others', 'the sticky leave is for directories');
  assert.is(whoElseCanChange({ uid: 0, mode: 0o120777, isDirectory: false, isSymbolicLink: true }, false), null, "a root-owned symlink's mode means nothing");
  assert.is(whoElseCanChange({ uid: 1000, mode: 0o120777, isDirectory: false, isSymbolicLink: true }, false), 'owned by uid 1000, not root');
});

test('pathAndParents: the path, then each directory above it, up to /', () => {
  assert.equal(pathAndParents('/usr/local/lib/thin-lxc'), ['/usr/local/lib/thin-lxc', '/usr/local/lib', '/usr/local', '/usr', '/']);
  assert.equal(pathAndParents('/'), ['/']);
});

test("firstUnsafeIn: a root-owned symlink inside the installation is refused, whatever it points at", () => {
  const dir = mkdtempSync('/tmp/thin-lxc-unit-');
  try {
    mkdirSync(join(dir, 'hooks'), { mode: 0o755 });
    const evil = join(dir, 'evil.js');
    writeFileSync(evil, '', { mode: 0o644 });
    chownSync(evil, 65534, 65534);
    const link = join(dir, 'hooks', 'thin-lxc-mount.js');
    symlinkSync(evil, link);
    lchownSync(link, 0, 0);
    assert.equal(firstUnsafeIn(join(dir, 'hooks')), { path: link, problem: 'a symlink, which thin-lxc never installs' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
