// Listing a root's thin containers through the parsed-state cache: what listing gives, that listing writes
// nothing, and that the commands that change a root bring the cache up to date.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listContainers, refreshStateCache } from '../../../src/container/containers.js';
import { serializeState, type ThinState } from '../../../src/state/state.js';

const CACHE = '.thin-lxc-states.json';

const state = (id: string, ip: string): ThinState => ({
  id,
  name: id,
  base: '/var/lib/lxc/b',
  baseName: 'b',
  fs: 'overlay',
  layers: ['/var/lib/lxc/b/rootfs'],
  hwaddrs: { '0': '00:16:3e:00:00:01' },
  ip,
  bridge: 'lxcbr0',
  subnet: '10.0.3.0/24',
  ip6: null,
  subnet6: null,
  veth: 'tlx0000beef',
  publish: ['8080:80'],
  mounts: [],
  lxcpath: '/var/lib/lxc',
  created: '2026-11-29T00:00:00.000Z',
  autostart: false,
  ephemeral: false,
  tmpfs: null,
  memory: null,
  cpus: null,
  template: null,
  disk: null,
  diskMode: null,
  diskProject: null,
  diskMount: null,
  idmap: null,
  shifted: [],
});

function rootWith(...states: ThinState[]): string {
  const root = mkdtempSync(join(tmpdir(), 'thin-lxc-cache-'));
  for (const one of states) {
    mkdirSync(join(root, one.id));
    writeFileSync(join(root, one.id, 'thin-lxc.ini'), serializeState(one));
  }
  return root;
}

test('listing reads, and writes nothing, not even a cache that is behind', () => {
  const root = rootWith(state('a', '10.0.3.2'), state('b', '10.0.3.3'));
  try {
    assert.equal(listContainers(root).map((c) => c.state.id), ['a', 'b']);
    assert.equal(readdirSync(root).sort(), ['a', 'b']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the cache holds what parsing gives, and a replaced state file is read again', () => {
  const root = rootWith(state('a', '10.0.3.2'), state('b', '10.0.3.3'));
  try {
    // Compared as JSON: ini makes objects without a prototype, the cache plain ones.
    const states = () => JSON.stringify(listContainers(root).map((c) => c.state));
    const parsed = states();
    refreshStateCache(root);
    assert.ok(existsSync(join(root, CACHE)));
    assert.is(states(), parsed, 'from the cache: the same states');
    // A new file (as create writes one: new inode) with other contents.
    writeFileSync(join(root, 'a', 'new.ini'), serializeState(state('a', '10.0.3.9')));
    renameSync(join(root, 'a', 'new.ini'), join(root, 'a', 'thin-lxc.ini'));
    assert.equal(listContainers(root).map((c) => c.state.ip), ['10.0.3.9', '10.0.3.3']);
    rmSync(join(root, 'b'), { recursive: true });
    assert.equal(listContainers(root).map((c) => c.state.id), ['a'], 'a container gone is gone from the list');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a root whose last container went keeps no cache', () => {
  const root = rootWith(state('a', '10.0.3.2'));
  try {
    refreshStateCache(root);
    assert.ok(existsSync(join(root, CACHE)));
    rmSync(join(root, 'a'), { recursive: true });
    refreshStateCache(root);
    assert.equal(readdirSync(root), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a damaged cache is ignored', () => {
  const root = rootWith(state('a', '10.0.3.2'));
  try {
    writeFileSync(join(root, CACHE), '{not json');
    assert.equal(listContainers(root).map((c) => c.state.ip), ['10.0.3.2']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
