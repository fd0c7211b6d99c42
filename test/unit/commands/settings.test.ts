import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveSettings } from '../../../src/commands/settings.js';

const files = (map: Record<string, string>) => (path: string) => map[path];

test('defaults: /containers and the lxcpath LXC itself uses', () => {
  assert.equal(resolveSettings({ flags: {}, env: {}, cwd: '/', readText: files({}) }), { root: '/containers', lxcpath: '/var/lib/lxc' });
  assert.equal(
    resolveSettings({ flags: {}, env: {}, cwd: '/', readText: files({ '/etc/lxc/lxc.conf': 'lxc.lxcpath = /srv/lxc\n' }) }).lxcpath,
    '/srv/lxc',
  );
});

test('the ini file, then env, then flags', () => {
  const readText = files({ '/etc/thin-lxc/thin-lxc.ini': 'root = /from/ini\nlxcpath = /ini/lxc\n' });
  assert.is(resolveSettings({ flags: {}, env: {}, cwd: '/', readText }).root, '/from/ini');
  assert.is(resolveSettings({ flags: {}, env: { THIN_LXC_ROOT: '/from/env' }, cwd: '/', readText }).root, '/from/env');
  assert.is(resolveSettings({ flags: { root: 'rel' }, env: { THIN_LXC_ROOT: '/from/env' }, cwd: '/home/u', readText }).root, '/home/u/rel');
  assert.is(resolveSettings({ flags: {}, env: {}, cwd: '/', readText }).lxcpath, '/ini/lxc');
});

test('THIN_LXC_CONFIG names another settings file', () => {
  const readText = files({ '/tmp/t.ini': 'root = /elsewhere\n' });
  assert.is(resolveSettings({ flags: {}, env: { THIN_LXC_CONFIG: '/tmp/t.ini' }, cwd: '/', readText }).root, '/elsewhere');
});

test('a root that hooks could not be run from is refused', () => {
  assert.throws(() => resolveSettings({ flags: { root: '/my containers' }, env: {}, cwd: '/', readText: files({}) }), /root "\/my containers" has characters/);
});

test.run();
