// After the bundles: the CLI and hooks executable, and nothing in dist/ writable by group or others, since the
// hooks run this code as root (thin-lxc create refuses an installation that others could change).
import { chmodSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function tighten(path) {
  const stat = statSync(path);
  chmodSync(path, stat.mode & 0o7755);
  if (stat.isDirectory()) for (const entry of readdirSync(path)) tighten(join(path, entry));
}

tighten('dist');
chmodSync('dist/bin/cli.js', 0o755);
for (const file of readdirSync('dist/hooks')) if (file.endsWith('.js')) chmodSync(`dist/hooks/${file}`, 0o755);
