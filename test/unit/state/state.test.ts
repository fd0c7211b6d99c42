// The state file (thin-lxc.ini) gives back exactly what create wrote, whatever the values.
import fc from 'fast-check';
import { parse } from 'ini';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseState, serializeState, type ThinState } from '../../../src/state/state.js';
/** Texts ini reads as something else when they stand bare, and texts that look like numbers or switches. */
const MISREAD = ['true', 'false', 'null', '0x10', '1e3', 'on', 'off', 'yes', 'no', '0', '-1', 'NaN', '[x]', '"q"', "'q'", ' pad ', 'a;b', 'a#b', 'a\\;b', 'a\\\\b', 'x\\', 'a=b', '\u2028', '__proto__'];
const text = fc.oneof(fc.constantFrom(...MISREAD), fc.string({ unit: 'binary', maxLength: 24 }));
const nonEmpty = text.filter((value) => value !== '');
const optional = fc.option(nonEmpty, { nil: null });

const states: fc.Arbitrary<ThinState> = fc.record({
  id: nonEmpty,
  name: nonEmpty,
  base: nonEmpty,
  baseName: nonEmpty,
  fs: fc.constantFrom('overlay' as const, 'aufs' as const),
  layers: fc.array(text, { maxLength: 3 }),
  hwaddrs: fc.dictionary(fc.integer({ min: 0, max: 9 }).map(String), text, { maxKeys: 3, noNullPrototype: true }),
  ip: optional,
  bridge: optional,
  subnet: optional,
  ip6: optional,
  subnet6: optional,
  veth: optional,
  publish: fc.array(text, { maxLength: 3 }),
  mounts: fc.array(text, { maxLength: 3 }),
  lxcpath: nonEmpty,
  created: nonEmpty,
  autostart: fc.boolean(),
  ephemeral: fc.boolean(),
  tmpfs: optional,
  memory: optional,
  cpus: optional,
  template: optional,
  idmap: fc.option(fc.tuple(fc.nat(), fc.nat()).map(([host, range]) => `${host}:${range}`), { nil: null }),
  shifted: fc.array(text, { maxLength: 3 }),
}, { noNullPrototype: true }).chain((state) => disks.map((disk) => ({ ...state, ...disk })));

/** A --disk limit comes whole: none, an image, or a quota project on a filesystem. */
const digits = fc.bigInt({ min: 1n, max: 2n ** 62n }).map(String);
const disks = fc.oneof(
  fc.constant({ disk: null, diskMode: null, diskProject: null, diskMount: null }),
  digits.map((disk) => ({ disk, diskMode: 'image' as const, diskProject: null, diskMount: null })),
  fc.tuple(digits, digits, text).map(([disk, project, mount]) => ({ disk, diskMode: 'quota' as const, diskProject: project, diskMount: `/${mount}` })),
);

test('every state, whatever its values, reads back exactly as it was written', () => {
  fc.assert(
    fc.property(states, (state) => {
      assert.equal(parseState(serializeState(state), 'test'), state);
    }),
    { numRuns: 2_000 },
  );
});

test('names that a bare ini value would misread round-trip, and the file stays readable by ini', () => {
  for (const name of ['true', 'false', 'null', '0x10', '1e3', 'on']) {
    const state: ThinState = {
      id: name, name, base: '/var/lib/lxc/b', baseName: 'b', fs: 'overlay', layers: ['/var/lib/lxc/b/rootfs'],
      hwaddrs: { '0': '00:16:3e:00:00:01' }, ip: null, bridge: null, subnet: null, ip6: null, subnet6: null, veth: null,
      publish: [], mounts: [], lxcpath: '/var/lib/lxc', created: '2026-11-29T00:00:00.000Z',
      autostart: false, ephemeral: false, tmpfs: null, memory: null, cpus: null, template: null,
      disk: null, diskMode: null, diskProject: null, diskMount: null, idmap: null, shifted: [],
    };
    const written = serializeState(state);
    assert.match(written, `name = "${name}"\n`);
    assert.equal(parseState(written, 'test'), state);
    assert.equal(Object.keys(parse(written)).sort(), ['autostart', 'base', 'baseName', 'bridge', 'cpus', 'created', 'ephemeral', 'fs', 'hwaddr', 'id', 'ip', 'ip6', 'layers', 'lxcpath', 'memory', 'name', 'subnet', 'subnet6', 'template', 'tmpfs', 'veth', 'disk', 'diskMode', 'diskProject', 'diskMount', 'idmap'].sort());
  }
});

test('a state file from an earlier version (bare ini values) still reads', () => {
  const earlier = [
    'id=web1', 'name=web1', 'base=/var/lib/lxc/b', 'baseName=b', 'fs=overlay', 'layers[]=/var/lib/lxc/b/rootfs',
    'ip=10.0.3.5', 'bridge=lxcbr0', 'subnet=10.0.3.0/24', 'veth=tlx0000beef', 'publish[]=8080:80/tcp',
    'lxcpath=/var/lib/lxc', 'created=2026-11-29T00:00:00.000Z', 'mounts[]=/srv:/app', '', '[hwaddr]', '0=00:16:3e:00:00:01', '',
  ].join('\n');
  const state = parseState(earlier, 'test');
  assert.is(state.name, 'web1');
  assert.equal(state.publish, ['8080:80/tcp']);
  assert.equal(state.hwaddrs, { '0': '00:16:3e:00:00:01' });
  // Written before thin-lxc 0.3: none of its later fields, so none of their features.
  assert.equal([state.autostart, state.ephemeral, state.tmpfs, state.memory, state.cpus, state.template, state.ip6], [false, false, null, null, null, null, null]);
  // Written before unprivileged containers: privileged.
  assert.equal([state.idmap, state.shifted], [null, []]);
});

test('a damaged state is refused, naming the field', () => {
  assert.throws(() => parseState('id = "a"\n', '/c/a/thin-lxc.ini'), /\/c\/a\/thin-lxc.ini has no valid name: the state file is damaged/);
  assert.throws(
    () => parseState(serializeState({ id: 'a', name: 'a', base: 'b', baseName: 'b', fs: 'btrfs' as 'overlay', layers: [], hwaddrs: {}, ip: null, bridge: null, subnet: null, ip6: null, subnet6: null, veth: null, publish: [], mounts: [], lxcpath: '/l', created: 'c', autostart: false, ephemeral: false, tmpfs: null, memory: null, cpus: null, template: null, disk: null, diskMode: null, diskProject: null, diskMount: null, idmap: null, shifted: [] }), 's'),
    /s has no valid fs/,
  );
  assert.throws(() => parseState(serializeState({ ...parseState('id="a"\nname="a"\nbase="b"\nbaseName="b"\nfs="overlay"\nlxcpath="/l"\ncreated="c"\n', 's') }).replace('ephemeral = "false"', 'ephemeral = "maybe"'), 's'), /s has no valid ephemeral/);
});

test('a --disk limit without its mechanism, or a quota without its project, is damage: removal would not know what to undo', () => {
  const plain = 'id="a"\nname="a"\nbase="b"\nbaseName="b"\nfs="overlay"\nlxcpath="/l"\ncreated="c"\n';
  assert.throws(() => parseState(`${plain}disk="1073741824"\n`, 's'), /s has no valid diskMode/);
  assert.throws(() => parseState(`${plain}disk="1073741824"\ndiskMode="quota"\ndiskMount="/"\n`, 's'), /s has no valid diskProject/);
  assert.throws(() => parseState(`${plain}diskMode="image"\n`, 's'), /s has no valid disk/);
  assert.throws(() => parseState(`${plain}disk="1G"\ndiskMode="image"\n`, 's'), /s has no valid disk/);
  assert.equal(
    parseState(`${plain}disk="1073741824"\ndiskMode="quota"\ndiskProject="1000000042"\ndiskMount="/srv"\n`, 's').diskProject,
    '1000000042',
  );
});

test.run();
