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

test('unprivileged = true or HOSTID:RANGE in the settings file makes create unprivileged by default; anything else is refused', () => {
  const with_ = (line: string) => resolveSettings({ flags: {}, env: {}, cwd: '/', readText: files({ '/etc/thin-lxc/thin-lxc.ini': `${line}\n` }) });
  assert.is(with_('unprivileged = true').unprivileged, '100000:65536');
  assert.is(with_('unprivileged = 200000:65536').unprivileged, '200000:65536');
  assert.is(with_('unprivileged = false').unprivileged, undefined);
  assert.throws(() => with_('unprivileged = 0:65536'), (error: Error) => error.message === 'unprivileged = 0:65536 in /etc/thin-lxc/thin-lxc.ini is not true, false or HOSTID:RANGE (e.g. 100000:65536): fix that line');
});

test.run();
