// Idempotent create: how an existing container differs from what a create asks for.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { specDifferences, type CreateSpec } from '../../../src/commands/create.js';
import type { ThinState } from '../../../src/state/state.js';

const state: ThinState = {
  id: 'web1', name: 'web1', base: '/var/lib/lxc/b', baseName: 'b', fs: 'overlay', layers: ['/var/lib/lxc/b/rootfs'],
  hwaddrs: { '0': '00:16:3e:00:00:01' }, ip: '10.0.3.67', bridge: 'lxcbr0', subnet: '10.0.3.0/24', ip6: null, subnet6: null, veth: 'tlx0000beef',
  publish: ['8080:80/tcp', '53:53/udp'], mounts: ['/srv:/app'], lxcpath: '/var/lib/lxc', created: '2026-11-30T00:00:00.000Z',
  autostart: false, ephemeral: false, tmpfs: null, memory: '268435456', cpus: null, template: null, disk: null, diskMode: null, diskProject: null, diskMount: null, idmap: null, shifted: [],
};
const spec: CreateSpec = {
  name: 'web1', id: null, base: '/var/lib/lxc/b', fs: 'overlay', ip: null, ip6: null, publish: ['53:53/udp', '8080:80/tcp'], mounts: ['/srv:/app'],
  autostart: false, ephemeral: false, tmpfs: null, memory: '268435456', cpus: null, template: null, disk: null, idmap: null,
};

test('the same request is no difference: what it left open (id, address) and the order of ports do not count', () => {
  assert.equal(specDifferences(spec, state), []);
  assert.equal(specDifferences({ ...spec, ip: '10.0.3.67', id: 'web1' }, state), []);
});

test('each field that differs is named, with what the container has and what was asked', () => {
  assert.equal(specDifferences({ ...spec, ip: '10.0.3.68', publish: ['8080:80/tcp'], cpus: '1', tmpfs: '50%' }, state), [
    'ip is 10.0.3.67, asked 10.0.3.68',
    'publish is 8080:80/tcp,53:53/udp, asked 8080:80/tcp',
    'tmpfs is none, asked 50%',
    'cpus is none, asked 1',
  ]);
  assert.equal(specDifferences({ ...spec, base: '/var/lib/lxc/c', template: 'ab12' }, state), ['base is /var/lib/lxc/b, asked /var/lib/lxc/c', 'template is none, asked ab12']);
});

test('a disk limit is part of the spec; how it is kept (image or quota) is the host\'s choice, not a difference', () => {
  assert.equal(specDifferences({ ...spec, disk: '1073741824' }, state), ['disk is none, asked 1073741824']);
  const limited: ThinState = { ...state, disk: '1073741824', diskMode: 'image' };
  assert.equal(specDifferences({ ...spec, disk: '1073741824' }, limited), []);
  assert.equal(specDifferences(spec, limited), ['disk is 1073741824, asked none']);
});

test.run();
