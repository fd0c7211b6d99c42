// Running system commands: what a missing one says.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../../src/core/exec.js';

test('a missing system command is a UserError that names the package to install', () => {
  assert.throws(() => run('iptables-restore-not-here', []), /iptables-restore-not-here is not installed: install it with apt-get install iptables-restore-not-here/);
  assert.throws(() => run('lxc-nothing', []), /lxc-nothing is not installed: install it with apt-get install lxc/);
});

test.run();
