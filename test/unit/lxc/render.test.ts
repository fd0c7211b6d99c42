import { readFileSync } from 'node:fs';
import Handlebars from 'handlebars';
import HandlebarsRuntime from 'handlebars/runtime.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { keptByThinContainer } from '../../../src/container/base.js';
import { formatEntry, mountEntry, parseLxcConfig } from '../../../src/lxc/config.js';
import { readTemplate, renderConfig, renderDefaultConfig, withHookLines, type ConfigView } from '../../../src/lxc/render.js';
import { HOOK_KEYS, type HookName } from '../../../src/lxc/install.js';
import { DEFAULT_TEMPLATE_SPEC } from '../../../src/lxc/default-template.js';
import { fixture } from '../../helpers/paths.js';

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
      mountType: 'pre-mount',
      destroy: '/usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-destroy.js /containers/w1',
      clone: '/usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-clone.js /containers/w1',
      portsUp: null,
      portsDown: '/usr/bin/env -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /usr/bin/node /opt/thin-lxc/dist/hooks/thin-lxc-ports-down.js /containers/w1',
      ephemeral: null,
    },
    publish: '',
    ipv4: null,
    ipv6: null,
    mounts: [],
    autostart: false,
    limits: [],
    tmpfs: null,
    ephemeral: false,
    idmap: null,
    ...overrides,
  };
}

test('the default template renders exactly the expected config', () => {
  assert.fixture(renderConfig(readTemplate(), view()), readFileSync(fixture('thin-web1.config'), 'utf8'));
});

test('the default template precompiled as scripts/bundle.mjs does renders exactly what compiling it does', () => {
  const spec = new Function(`return ${Handlebars.precompile(readTemplate(), { noEscape: true })}`)() as Parameters<typeof Handlebars.template>[0];
  assert.is((HandlebarsRuntime as unknown as typeof Handlebars).template(spec)(view()), renderConfig(readTemplate(), view()));
  assert.is(DEFAULT_TEMPLATE_SPEC, null, "tsc's output has no precompiled template: renderDefaultConfig compiles it");
  assert.is(renderDefaultConfig(view()), renderConfig(readTemplate(), view()));
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
    /the config template drops lines thin-lxc needs \(lxc.hook.version, lxc.hook.pre-mount, lxc.hook.destroy, lxc.hook.clone, lxc.hook.post-stop\)/,
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
});

test('an address, published ports, bind mounts and autostart add their config lines', () => {
  const text = renderConfig(readTemplate(), {
    version: '1',
    id: 'w1',
    name: 'web1',
    baseName: 'b',
    baseConfig: '/var/lib/lxc/b/config',
    baseLines: ['lxc.net.0.type = veth', 'lxc.net.0.link = lxcbr0'],
    fs: 'overlay',
    rootfs: '/c/w1/image/rootfs',
    wlayer: '/c/w1/wlayer',
    hwaddrs: [{ index: 0, address: '00:16:3e:00:00:01' }],
    publish: '8080:80/tcp',
    ipv4: { index: 0, address: '10.0.3.67', prefix: 24, broadcast: '10.0.3.255', gateway: '10.0.3.1', veth: 'tlx00000001' },
    ipv6: { index: 0, address: 'fd42:7a3b:1c00::a00:343', prefix: 64, gateway: 'fd42:7a3b:1c00::1' },
    hooks: { mount: '/n /m.js /c/w1', mountType: 'pre-mount', destroy: '/n /d.js /c/w1', clone: '/n /c.js /c/w1', portsUp: '/n /u.js /c/w1', portsDown: '/n /p.js /c/w1', ephemeral: '/n /e.js /c/w1' },
    mounts: [
      mountEntry({ host: '/srv/my app', container: '/app', readOnly: false }, true),
      mountEntry({ host: '/etc/host\\conf', container: '/etc/my conf', readOnly: true }, false),
    ],
    autostart: true,
    limits: [{ key: 'lxc.cgroup2.memory.max', value: '268435456' }],
    tmpfs: null,
    ephemeral: true,
    idmap: null,
  });
  for (const line of [
    'lxc.cgroup2.memory.max = 268435456',
    'lxc.net.0.ipv6.address = fd42:7a3b:1c00::a00:343/64',
    'lxc.net.0.ipv6.gateway = fd42:7a3b:1c00::1',
    'lxc.hook.post-stop = /n /e.js /c/w1',
    'lxc.net.0.ipv4.address = 10.0.3.67/24 10.0.3.255',
    'lxc.net.0.ipv4.gateway = 10.0.3.1',
    'lxc.net.0.veth.pair = tlx00000001',
    'lxc.hook.start-host = /n /u.js /c/w1',
    'lxc.hook.post-stop = /n /p.js /c/w1',
    'lxc.mount.entry = /srv/my\\040app app none bind,create=dir 0 0',
    'lxc.mount.entry = /etc/host\\134conf etc/my\\040conf none bind,create=file,ro 0 0',
    'lxc.start.auto = 1',
  ]) {
    assert.ok(text.split('\n').includes(line), line);
  }
});

test('an unprivileged container: its map, a monitor namespace of its own, and the mount hook at pre-start; a template that drops them is refused', () => {
  const unprivileged = view({ idmap: { host: 100000, range: 65536 }, hooks: { ...view().hooks, mountType: 'pre-start' } });
  const config = renderDefaultConfig(unprivileged);
  const entries = parseLxcConfig(config).map(formatEntry);
  for (const line of ['lxc.idmap = u 0 100000 65536', 'lxc.idmap = g 0 100000 65536', 'lxc.monitor.unshare = 1', `lxc.hook.pre-start = ${unprivileged.hooks.mount}`]) {
    assert.ok(entries.includes(line), line);
  }
  assert.not.ok(entries.some((line) => line.startsWith('lxc.hook.pre-mount')));
  assert.match(config, "inside its monitor's own mount namespace");
  const privileged = renderConfig(readTemplate(), view());
  assert.throws(
    () => renderConfig(privileged, unprivileged),
    (error: Error) => error.message === 'the config template drops lines thin-lxc needs (lxc.hook.pre-start, lxc.idmap, lxc.monitor.unshare): keep them as in templates/config.hbs',
  );
});

test('a base\'s own map and monitor namespace are not kept: the thin container\'s --unprivileged decides them', () => {
  const kept = parseLxcConfig('lxc.idmap = u 0 200000 65536\nlxc.idmap = g 0 200000 65536\nlxc.monitor.unshare = 1\nlxc.net.0.type = veth\n').filter(keptByThinContainer);
  assert.equal(kept.map(formatEntry), ['lxc.net.0.type = veth']);
});

test.run();
