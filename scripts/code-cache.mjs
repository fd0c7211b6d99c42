// Makes dist/bin/thin-lxc.js.cache, the V8 code cache dist/bin/cli.js runs the CLI with: runs commands
// that touch nothing on the host (help, the default template, a dry-run create in a scratch directory,
// a few refusals) and keeps what V8 compiled for them. Each run starts from the last one's cache, so the
// cache grows to cover them all. A run that fails (not root, no LXC) still adds what it compiled.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

rmSync('dist/bin/thin-lxc.js.cache', { force: true });
const scratch = mkdtempSync(join(tmpdir(), 'thin-lxc-code-cache-'));
try {
  const base = join(scratch, 'base');
  mkdirSync(join(base, 'rootfs'), { recursive: true });
  writeFileSync(join(base, 'config'), `lxc.rootfs.path = dir:${base}/rootfs\nlxc.uts.name = base\nlxc.net.0.type = empty\n`);
  const sandbox = ['--root', join(scratch, 'root'), '--lxcpath', join(scratch, 'lxc')];
  const runs = [
    ['--help'],
    ['create', '--help'],
    ['template'],
    ['create', 'warm', '--base', base, '-m', `${scratch}:/mnt`, '--dry-run', ...sandbox],
    ['create', 'bad\nname', '--base', base, ...sandbox],
    ['list', '--json', ...sandbox],
    ['show', 'nothing', ...sandbox],
  ];
  const env = { ...process.env, THIN_LXC_WRITE_CODE_CACHE: '1' };
  delete env.NODE_OPTIONS;
  for (const args of runs) spawnSync(process.execPath, ['dist/bin/cli.js', ...args], { env, stdio: 'ignore' });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
// Code the CLI runs as root: nobody but root may change it (as scripts/make-executable.mjs does for dist/).
if (existsSync('dist/bin/thin-lxc.js.cache')) chmodSync('dist/bin/thin-lxc.js.cache', 0o644);
