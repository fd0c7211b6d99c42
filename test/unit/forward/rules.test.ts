import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { containerRules, containerTag, guardInPlace, guardScript, quickInstallScript, quickRemoveScript, readSaved, restoreScript, targetFamilies, vethName, type ForwardTarget } from '../../../src/forward/rules.js';
import { parsePublish } from '../../../src/core/validate.js';
import { fixture } from '../../helpers/paths.js';

const web1: ForwardTarget = {
  tag: 'TLXC-0000beef',
  name: 'web1',
  address: '10.0.3.67',
  subnet: '10.0.3.0/24', ipv6: null,
  publish: ['8080:80', '127.0.0.1:5000-5001:6000-6001/udp'].map(parsePublish),
};

const SAVED_WITH_OTHER = `*nat
:PREROUTING ACCEPT [0:0]
:TLXC-1111cafe-D - [0:0]
:TLXC-1111cafe-S - [0:0]
COMMIT
`;

/** What iptables-save printed on the reference machine with web1 (TLXC-0000beef) running. */
const SAVED_WEB1 = readFileSync(fixture('saved-web1.txt'), 'utf8');
/** The same with a second container, 1111cafe, running too. */
const SAVED_TWO = SAVED_WEB1.replace(':TLXC-0000beef-D - [0:0]', ':TLXC-0000beef-D - [0:0]\n:TLXC-1111cafe-D - [0:0]\n:TLXC-1111cafe-S - [0:0]')
  .replace('-A THIN-LXC-DNAT -j TLXC-0000beef-D', '-A THIN-LXC-DNAT -j TLXC-0000beef-D\n-A THIN-LXC-DNAT -j TLXC-1111cafe-D')
  .replace('-A THIN-LXC-SNAT -j TLXC-0000beef-S', '-A THIN-LXC-SNAT -j TLXC-0000beef-S\n-A THIN-LXC-SNAT -j TLXC-1111cafe-S')
  .replace(':TLXC-0000beef-F - [0:0]', ':TLXC-0000beef-F - [0:0]\n:TLXC-1111cafe-F - [0:0]')
  .replace('-A THIN-LXC-FWD -j TLXC-0000beef-F', '-A THIN-LXC-FWD -j TLXC-0000beef-F\n-A THIN-LXC-FWD -j TLXC-1111cafe-F');
const install = { install: { tag: web1.tag, rules: containerRules(web1) } };
const withoutOwnRules = (script: string) => script.split('\n').filter((line) => !line.startsWith(`-A ${web1.tag}-`)).join('\n');

test('installing the first container: guard, shared chains, its chains and every jump, exactly', () => {
  assert.fixture(restoreScript(readSaved(SAVED_WITH_OTHER), install), readFileSync(fixture('forward-web1.rules'), 'utf8'));
});

test('installing next to another container adds its own chains and jumps and flushes nothing shared', () => {
  const saved = readSaved(SAVED_WEB1.replaceAll('0000beef', '1111cafe'));
  assert.is(
    withoutOwnRules(restoreScript(saved, install)),
    [
      '*nat',
      ':TLXC-0000beef-D - [0:0]',
      ':TLXC-0000beef-S - [0:0]',
      '-A THIN-LXC-DNAT -j TLXC-0000beef-D',
      '-A THIN-LXC-SNAT -j TLXC-0000beef-S',
      'COMMIT',
      '*filter',
      ':TLXC-0000beef-F - [0:0]',
      '-A THIN-LXC-FWD -j TLXC-0000beef-F',
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('reinstalling after a crash replaces its own chains and adds no jump twice', () => {
  const script = restoreScript(readSaved(SAVED_WEB1), install);
  assert.is(withoutOwnRules(script), ['*nat', ':TLXC-0000beef-D - [0:0]', ':TLXC-0000beef-S - [0:0]', 'COMMIT', '*filter', ':TLXC-0000beef-F - [0:0]', 'COMMIT', ''].join('\n'));
  assert.is(script.split('\n').filter((line) => line.startsWith(`-A ${web1.tag}-D `)).length, 3);
});

test('removing the last container removes the shared chains and their jumps, and keeps the localhost guard', () => {
  assert.is(
    restoreScript(readSaved(SAVED_WEB1), { remove: web1.tag }),
    [
      '*nat',
      ':THIN-LXC-DNAT - [0:0]',
      ':TLXC-0000beef-D - [0:0]',
      '-X TLXC-0000beef-D',
      ':THIN-LXC-SNAT - [0:0]',
      ':TLXC-0000beef-S - [0:0]',
      '-X TLXC-0000beef-S',
      '-D PREROUTING -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT',
      '-D OUTPUT -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT',
      '-D POSTROUTING -j THIN-LXC-SNAT',
      '-X THIN-LXC-DNAT',
      '-X THIN-LXC-SNAT',
      'COMMIT',
      '*filter',
      ':THIN-LXC-FWD - [0:0]',
      ':TLXC-0000beef-F - [0:0]',
      '-X TLXC-0000beef-F',
      '-D FORWARD -j THIN-LXC-FWD',
      '-X THIN-LXC-FWD',
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('removing one of two deletes only its jumps and chains', () => {
  assert.is(
    restoreScript(readSaved(SAVED_TWO), { remove: web1.tag }),
    [
      '*nat',
      '-D THIN-LXC-DNAT -j TLXC-0000beef-D',
      ':TLXC-0000beef-D - [0:0]',
      '-X TLXC-0000beef-D',
      '-D THIN-LXC-SNAT -j TLXC-0000beef-S',
      ':TLXC-0000beef-S - [0:0]',
      '-X TLXC-0000beef-S',
      'COMMIT',
      '*filter',
      '-D THIN-LXC-FWD -j TLXC-0000beef-F',
      ':TLXC-0000beef-F - [0:0]',
      '-X TLXC-0000beef-F',
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('removing what is not there changes nothing', () => {
  assert.is(restoreScript(readSaved(SAVED_WEB1.replaceAll('0000beef', '1111cafe')), { remove: web1.tag }), '');
});

test('a base jump that somebody duplicated is deleted as often as it appears', () => {
  const doubled = SAVED_WEB1.replace('-A POSTROUTING -j THIN-LXC-SNAT', '-A POSTROUTING -j THIN-LXC-SNAT\n-A POSTROUTING -j THIN-LXC-SNAT');
  assert.is(restoreScript(readSaved(doubled), { remove: web1.tag }).match(/^-D POSTROUTING -j THIN-LXC-SNAT$/gm)?.length, 2);
});

test('quick install: checks that the guard, the shared chains and their base jumps are there, then adds its own', () => {
  assert.is(
    withoutOwnRules(quickInstallScript(install.install)),
    [
      '*raw',
      '-C THIN-LXC-GUARD ! -i lo -d 127.0.0.0/8 -j DROP',
      '-C PREROUTING -j THIN-LXC-GUARD',
      'COMMIT',
      '*nat',
      '-C PREROUTING -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT',
      '-C OUTPUT -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT',
      '-C POSTROUTING -j THIN-LXC-SNAT',
      ':TLXC-0000beef-D - [0:0]',
      ':TLXC-0000beef-S - [0:0]',
      '-A THIN-LXC-DNAT -j TLXC-0000beef-D',
      '-A THIN-LXC-SNAT -j TLXC-0000beef-S',
      'COMMIT',
      '*filter',
      '-C FORWARD -j THIN-LXC-FWD',
      ':TLXC-0000beef-F - [0:0]',
      '-A THIN-LXC-FWD -j TLXC-0000beef-F',
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('golden: installing on an empty ruleset (nothing of iptables in use yet) makes everything, exactly', () => {
  assert.fixture(restoreScript(readSaved(''), install), readFileSync(fixture('forward-web1-empty.rules'), 'utf8'));
});

test('quick removal: its jumps, then its chains', () => {
  assert.is(
    quickRemoveScript(web1.tag),
    ['*nat', '-D THIN-LXC-DNAT -j TLXC-0000beef-D', ':TLXC-0000beef-D - [0:0]', '-X TLXC-0000beef-D', '-D THIN-LXC-SNAT -j TLXC-0000beef-S', ':TLXC-0000beef-S - [0:0]', '-X TLXC-0000beef-S', 'COMMIT',
      '*filter', '-D THIN-LXC-FWD -j TLXC-0000beef-F', ':TLXC-0000beef-F - [0:0]', '-X TLXC-0000beef-F', 'COMMIT', ''].join('\n'),
  );
  assert.is(quickRemoveScript(web1.tag), restoreScript(readSaved(SAVED_TWO), { remove: web1.tag }), 'what a reconcile would do with another container running');
});

test('the first one in makes the shared chains (-N, which fails where one is there) and their base jumps, as a reconcile would', () => {
  const first = quickInstallScript(install.install, 4, { first: true });
  assert.is(
    withoutOwnRules(first),
    [
      '*raw',
      '-C THIN-LXC-GUARD ! -i lo -d 127.0.0.0/8 -j DROP',
      '-C PREROUTING -j THIN-LXC-GUARD',
      'COMMIT',
      '*nat',
      '-N THIN-LXC-DNAT',
      '-N THIN-LXC-SNAT',
      '-A PREROUTING -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT',
      '-A OUTPUT -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT',
      '-I POSTROUTING 1 -j THIN-LXC-SNAT',
      ':TLXC-0000beef-D - [0:0]',
      ':TLXC-0000beef-S - [0:0]',
      '-A THIN-LXC-DNAT -j TLXC-0000beef-D',
      '-A THIN-LXC-SNAT -j TLXC-0000beef-S',
      'COMMIT',
      '*filter',
      '-N THIN-LXC-FWD',
      '-I FORWARD 1 -j THIN-LXC-FWD',
      ':TLXC-0000beef-F - [0:0]',
      '-A THIN-LXC-FWD -j TLXC-0000beef-F',
      'COMMIT',
      '',
    ].join('\n'),
  );
  // The same base jumps and shared-chain jumps as a reconcile on a host with only the guard.
  const reconcile = restoreScript(readSaved('*raw\n:THIN-LXC-GUARD - [0:0]\n-A PREROUTING -j THIN-LXC-GUARD\n-A THIN-LXC-GUARD -d 127.0.0.0/8 ! -i lo -j DROP\nCOMMIT\n'), install);
  const jumps = (script: string) => script.split('\n').filter((line) => /^-[AI] /.test(line) && !line.startsWith(`-A ${web1.tag}`)).sort();
  assert.equal(jumps(first), jumps(reconcile));
});

test('the last one out removes the shared chains and their base jumps too, deleting its own jumps rather than flushing a shared chain', () => {
  const last = quickRemoveScript(web1.tag, { last: true });
  assert.is(
    last,
    ['*nat', '-D THIN-LXC-DNAT -j TLXC-0000beef-D', ':TLXC-0000beef-D - [0:0]', '-X TLXC-0000beef-D', '-D THIN-LXC-SNAT -j TLXC-0000beef-S', ':TLXC-0000beef-S - [0:0]', '-X TLXC-0000beef-S',
      '-D PREROUTING -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT', '-D OUTPUT -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT', '-D POSTROUTING -j THIN-LXC-SNAT', '-X THIN-LXC-DNAT', '-X THIN-LXC-SNAT', 'COMMIT',
      '*filter', '-D THIN-LXC-FWD -j TLXC-0000beef-F', ':TLXC-0000beef-F - [0:0]', '-X TLXC-0000beef-F', '-D FORWARD -j THIN-LXC-FWD', '-X THIN-LXC-FWD', 'COMMIT', ''].join('\n'),
  );
  // The same chains and base jumps as a reconcile removes when the container is the only one; the raw table's guard stays.
  const reconcile = restoreScript(readSaved(SAVED_WEB1), { remove: web1.tag });
  const changes = (script: string) => script.split('\n').filter((line) => /^-[DX] /.test(line) && !line.includes('-j TLXC-')).sort();
  assert.equal(changes(last), changes(reconcile));
  assert.match(quickRemoveScript(web1.tag, { last: true, family: 6 }), '-D OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT');
});

test('veth and chain names: short, stable, salted on request; chains are named after the veth', () => {
  assert.match(vethName('/containers/web1'), /^tlx[0-9a-f]{8}$/);
  assert.is(vethName('/containers/web1'), vethName('/containers/web1'));
  assert.is.not(vethName('/containers/web1', 1), vethName('/containers/web1'));
  assert.ok(vethName('/x').length <= 15);
  assert.is(containerTag('tlx0000beef'), 'TLXC-0000beef');
  assert.ok(`${containerTag(vethName('/x'))}-D`.length <= 28);
});

test('IPv6: each family gets the ports published on it; IPv6 has no localhost rule or guard, and its OUTPUT jump leaves [::1] alone', () => {
  const dual: ForwardTarget = {
    ...web1,
    ipv6: { address: 'fd42:7a3b:1c00::a00:343', subnet: 'fd42:7a3b:1c00::/64' },
    publish: ['8080:80', '0.0.0.0:7070:70', '[::]:9090:90', '[2001:db8::1]:6060:60'].map(parsePublish),
  };
  assert.equal(targetFamilies(dual), [4, 6]);
  assert.equal(targetFamilies({ ...dual, ipv6: null }), [4], 'no IPv6 address: IPv4 only');
  const v4 = containerRules(dual, 4).nat.filter((line) => line.includes('DNAT --to'));
  const v6 = containerRules(dual, 6).nat.filter((line) => line.includes('DNAT --to'));
  assert.equal(v4.map((line) => /--dport (\d+)/.exec(line)?.[1]), ['8080', '7070']);
  assert.equal(v6.map((line) => /--dport (\d+)/.exec(line)?.[1]), ['8080', '9090', '6060']);
  assert.match(v6[0]!, '-j DNAT --to-destination [fd42:7a3b:1c00::a00:343]:80');
  assert.match(v6[2]!, '-A TLXC-0000beef-D -d 2001:db8::1/128 -p tcp');
  const snat = containerRules(dual, 6).nat.filter((line) => line.includes('MASQUERADE'));
  assert.ok(snat.every((line) => line.includes('-s fd42:7a3b:1c00::/64 -d fd42:7a3b:1c00::a00:343/128')), 'hairpin only: no 127.0.0.0/8 rule');
  const script = restoreScript(readSaved(''), { install: { tag: dual.tag, rules: containerRules(dual, 6) } }, 6);
  assert.not.match(script, '*raw');
  assert.not.match(script, 'GUARD');
  assert.match(script, '-A OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT');
  assert.match(quickInstallScript({ tag: dual.tag, rules: containerRules(dual, 6) }, 6), '-C OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT');
  assert.equal(containerRules({ ...dual, ipv6: null }, 6), { nat: [], filter: [] });
});

test.run();

test('the localhost guard: in place with its rule and jump; what is missing of it, and only that, is put back', () => {
  assert.ok(guardInPlace(readSaved(SAVED_WEB1)));
  assert.is(guardScript(readSaved(SAVED_WEB1)), '');
  const flushed = SAVED_WEB1.replace('-A PREROUTING -j THIN-LXC-GUARD\n', '').replace('-A THIN-LXC-GUARD -d 127.0.0.0/8 ! -i lo -j DROP\n', '');
  assert.not.ok(guardInPlace(readSaved(flushed)));
  assert.is(guardScript(readSaved(flushed)), '*raw\n:THIN-LXC-GUARD - [0:0]\n-A THIN-LXC-GUARD ! -i lo -d 127.0.0.0/8 -j DROP\n-I PREROUTING 1 -j THIN-LXC-GUARD\nCOMMIT\n');
  const noJump = SAVED_WEB1.replace('-A PREROUTING -j THIN-LXC-GUARD\n', '');
  assert.not.ok(guardInPlace(readSaved(noJump)), 'a guard nothing jumps to guards nothing');
  assert.is(guardScript(readSaved(noJump)), '*raw\n-I PREROUTING 1 -j THIN-LXC-GUARD\nCOMMIT\n');
  assert.not.ok(guardInPlace(readSaved('')), 'an empty ruleset has none');
});
