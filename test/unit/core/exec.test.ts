// Running system commands: what a missing one says.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../../src/core/exec.js';

test('a missing system command is a UserError that names the package to install', () => {
  assert.throws(() => run('iptables-restore-not-here', []), /iptables-restore-not-here is not installed: install it with apt-get install iptables-restore-not-here/);
  assert.throws(() => run('lxc-nothing', []), /lxc-nothing is not installed: install it with apt-get install lxc/);
});

test("cleanEnv: the command gets PATH and nothing of the caller's environment", () => {
  process.env.PERL5OPT = '-MThinLxcMarker';
  try {
    assert.is(run('/usr/bin/env', [], { cleanEnv: true }).stdout, 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n');
    assert.match(run('/usr/bin/env', []).stdout, 'PERL5OPT=-MThinLxcMarker', 'without it, the environment passes through');
  } finally {
    delete process.env.PERL5OPT;
  }
});

test.run();
