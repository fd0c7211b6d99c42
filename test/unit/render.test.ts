import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { keptByThinContainer } from '../../src/base.js';
import { formatEntry, parseLxcConfig } from '../../src/lxc-config.js';
import { readTemplate, renderConfig, renderDefaultConfig, withHookLines, type ConfigView } from '../../src/render.js';
import { HOOK_KEYS, hookLineFiles, thinHookOf, type HookName } from '../../src/install.js';
import { DEFAULT_TEMPLATE_SPEC } from '../../src/default-template.js';
import { fixture } from '../helpers/paths.js';

function view(overrides: Partial<ConfigView> = {}): ConfigView {
  const baseEntries = parseLxcConfig(readFileSync(fixture('busybox-base.config'), 'utf8')).filter(keptByThinContainer);
  return {
    version: '9.9.9',
    id: 'w1',
    name: 'web1',
    baseName: 'bb0',
    baseConfig: '/var/lib/lxc/bb0/config',
    baseLines: baseEntries.map(formatEntry),
    fs: 'overlay',
    rootfs: '/containers/w1/image/rootfs',
    wlayer: '/containers/w1/wlayer',
    hwaddrs: [{ index: 0, address: '00:16:3e:0a:0b:0c' }],
    hooks: {
      mount: '/usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-mount.js /containers/w1',
      destroy: '/usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-destroy.js /containers/w1',
      clone: '/usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-clone.js /containers/w1',
      portsUp: null,
      portsDown: null,
    },
    publish: '',
    ipv4: null,
    mounts: [],
    autostart: false,
    ...overrides,
  };
}

test('the default template renders exactly the expected config', () => {
  assert.fixture(renderConfig(readTemplate(), view()), readFileSync(fixture('thin-web1.config'), 'utf8'));
});

test('the precompiled default template renders exactly what compiling templates/config.hbs does', () => {
  assert.is(renderDefaultConfig(view()), renderConfig(readTemplate(), view()));
  assert.ok(DEFAULT_TEMPLATE_SPEC, 'npm run build precompiled it');
});

test('values are not HTML-escaped', () => {
  const text = renderConfig(readTemplate(), view({ baseLines: ['lxc.environment = A=<b>&"c"'] }));
  assert.ok(text.includes('lxc.environment = A=<b>&"c"\n'));
});

test('a newline in any value is refused before it can become a config line', () => {
  assert.throws(
    () => renderConfig(readTemplate(), view({ name: 'web1\nlxc.hook.start-host = /bin/evil' })),
    /name "web1\\nlxc.hook.start-host = \/bin\/evil" contains a control character/,
  );
  assert.throws(() => renderConfig(readTemplate(), view({ baseLines: ['lxc.a = 1\rlxc.b = 2'] })), /control character/);
});

test('a template that drops the lines thin-lxc needs is refused', () => {
  assert.throws(
    () => renderConfig('lxc.uts.name = {{name}}\nlxc.rootfs.path = dir:{{rootfs}}\n', view()),
    /the config template drops lines thin-lxc needs \(lxc.hook.version, lxc.hook.pre-mount, lxc.hook.destroy, lxc.hook.clone\)/,
  );
});

test('refresh: our hook lines point at this installation in place, one missing is added, others are untouched', () => {
  const old = (hook: string) => `/usr/bin/env -u NODE_OPTIONS /opt/node-18/bin/node /old/dist/hooks/thin-lxc-${hook}.js /containers/w1`;
  const config = [
    'lxc.uts.name = web1',
    `lxc.hook.pre-mount = ${old('mount')}`,
    'lxc.hook.pre-mount = /usr/share/lxc/hooks/mine',
    `lxc.hook.destroy = ${old('destroy')}`,
    `lxc.hook.start-host = ${old('ports-up')}`,
    `lxc.hook.post-stop = ${old('ports-down')}`,
    '',
  ].join('\n');
  const now = (hook: HookName) => `/usr/bin/node /new/dist/hooks/thin-lxc-${hook}.js /containers/w1`;
  const hooks = (['mount', 'destroy', 'clone'] as const).map((hook) => ({ hook, key: HOOK_KEYS[hook], command: now(hook) }));
  assert.is(
    withHookLines(config, hooks),
    [
      'lxc.uts.name = web1',
      `lxc.hook.pre-mount = ${now('mount')}`,
      'lxc.hook.pre-mount = /usr/share/lxc/hooks/mine',
      `lxc.hook.destroy = ${now('destroy')}`,
      '',
      '# Added by thin-lxc refresh.',
      `lxc.hook.clone = ${now('clone')}`,
      '',
    ].join('\n'),
    'the forwarding hooks go with no published port; the clone hook an older version lacked is added',
  );
  assert.is(withHookLines(withHookLines(config, hooks), hooks), withHookLines(config, hooks), 'a second refresh changes nothing');
  assert.equal(hookLineFiles(old('mount')), { node: '/opt/node-18/bin/node', hook: '/old/dist/hooks/thin-lxc-mount.js' });
  assert.is(thinHookOf('/usr/share/lxc/hooks/mine'), null);
});

test.run();
