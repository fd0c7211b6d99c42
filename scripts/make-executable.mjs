// Marks the built CLI and hooks executable, since tsc does not.
import { chmodSync, readdirSync } from 'node:fs';

chmodSync('dist/src/cli.js', 0o755);
for (const file of readdirSync('dist/hooks')) if (file.endsWith('.js')) chmodSync(`dist/hooks/${file}`, 0o755);
