// This installation: thin-lxc's hook lines as LXC runs them, and where the installation's files are.
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hookLineFiles, installationPath, thinHookOf } from '../../../src/lxc/install.js';
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

test.run();
