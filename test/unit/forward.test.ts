import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { containerRules, containerTag, readSaved, restoreScript, vethName, type ForwardTarget } from '../../src/forward.js';
import { shellVariable } from '../../src/lxc-net.js';
import { parsePublish } from '../../src/validate.js';
import { fixture } from '../helpers/paths.js';

const web1: ForwardTarget = {
  tag: 'TLXC-0000beef',
  name: 'web1',
  address: '10.0.3.67',
  subnet: '10.0.3.0/24',
  publish: ['8080:80', '127.0.0.1:5000-5001:6000-6001/udp'].map(parsePublish),
};

const SAVED_WITH_OTHER = `*nat
:PREROUTING ACCEPT [0:0]
:TLXC-1111cafe-D - [0:0]
:TLXC-1111cafe-S - [0:0]
COMMIT
`;

test('installing: exact rules, shared chains rebuilt with every container, base jumps added once', () => {
  const script = restoreScript(readSaved(SAVED_WITH_OTHER), { install: { tag: web1.tag, rules: containerRules(web1) } });
  assert.fixture(script, readFileSync(fixture('forward-web1.rules'), 'utf8'));
});

test('reinstalling after a crash replaces: jumps already there are not added again', () => {
  const saved = readSaved(`*raw\n-A PREROUTING -j THIN-LXC-GUARD\nCOMMIT\n*nat\n:TLXC-0000beef-D - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT\n-A OUTPUT -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT\n-A POSTROUTING -j THIN-LXC-SNAT\nCOMMIT\n*filter\n-A FORWARD -j THIN-LXC-FWD\nCOMMIT\n`);
  const script = restoreScript(saved, { install: { tag: web1.tag, rules: containerRules(web1) } });
  assert.not.match(script, /^-[AI] (PREROUTING|OUTPUT|POSTROUTING|FORWARD) /m);
  assert.is(script.match(/-A THIN-LXC-DNAT -j TLXC-0000beef-D/g)?.length, 1);
});

test('removing the last container removes the shared chains and their jumps, and keeps the localhost guard', () => {
  const saved = readSaved(`*raw\n-A PREROUTING -j THIN-LXC-GUARD\nCOMMIT\n*nat\n:TLXC-0000beef-D - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT\n-A OUTPUT -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT\n-A POSTROUTING -j THIN-LXC-SNAT\nCOMMIT\n*filter\n-A FORWARD -j THIN-LXC-FWD\nCOMMIT\n`);
  assert.is(
    restoreScript(saved, { remove: web1.tag }),
    [
      '*nat',
      ':THIN-LXC-DNAT - [0:0]',
      ':THIN-LXC-SNAT - [0:0]',
      '-D PREROUTING -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT',
      '-D OUTPUT -m addrtype --dst-type LOCAL -j THIN-LXC-DNAT',
      '-D POSTROUTING -j THIN-LXC-SNAT',
      ':TLXC-0000beef-D - [0:0]',
      '-X TLXC-0000beef-D',
      ':TLXC-0000beef-S - [0:0]',
      '-X TLXC-0000beef-S',
      '-X THIN-LXC-DNAT',
      '-X THIN-LXC-SNAT',
      'COMMIT',
      '*filter',
      ':THIN-LXC-FWD - [0:0]',
      '-D FORWARD -j THIN-LXC-FWD',
      ':TLXC-0000beef-F - [0:0]',
      '-X TLXC-0000beef-F',
      '-X THIN-LXC-FWD',
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('removing what is not there is harmless: it only declares and deletes its own chains', () => {
  const script = restoreScript(readSaved(SAVED_WITH_OTHER), { remove: web1.tag });
  assert.match(script, '-A THIN-LXC-DNAT -j TLXC-1111cafe-D');
  assert.match(script, '-X TLXC-0000beef-D');
  assert.not.match(script, '-X THIN-LXC-DNAT');
});

test('names derived from the container directory fit iptables and interface name limits', () => {
  assert.match(containerTag('/containers/web1'), /^TLXC-[0-9a-f]{8}$/);
  assert.ok(`${containerTag('/x')}-D`.length <= 28);
  assert.match(vethName('/containers/web1'), /^tlx[0-9a-f]{8}$/);
  assert.ok(vethName('/x').length <= 15);
});

test('shell defaults files: the last uncommented assignment, unquoted', () => {
  const text = 'USE_LXC_BRIDGE="true"\n#LXC_DHCP_CONFILE=/etc/dnsmasq.conf\nLXC_DHCP_CONFILE="/etc/a.conf"\n';
  assert.is(shellVariable(text, 'LXC_DHCP_CONFILE'), '/etc/a.conf');
  assert.is(shellVariable('#LXC_DHCP_CONFILE=/x\n', 'LXC_DHCP_CONFILE'), undefined);
});

test.run();
