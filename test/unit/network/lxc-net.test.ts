// Reading lxc-net's shell defaults file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { shellVariable } from '../../../src/network/lxc-net.js';

test('shell defaults files: the last uncommented assignment, unquoted', () => {
  const text = 'USE_LXC_BRIDGE="true"\n#LXC_DHCP_CONFILE=/etc/dnsmasq.conf\nLXC_DHCP_CONFILE="/etc/a.conf"\n';
  assert.is(shellVariable(text, 'LXC_DHCP_CONFILE'), '/etc/a.conf');
  assert.is(shellVariable('#LXC_DHCP_CONFILE=/x\n', 'LXC_DHCP_CONFILE'), undefined);
});

test.run();
