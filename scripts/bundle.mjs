// Bundles the CLI (lazily loaded commands become chunks) and each hook into single files: loading one file
// instead of dozens of modules is most of what a Node process spends before doing its work.
import { build } from 'esbuild';
import { readdirSync } from 'node:fs';

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  // Handlebars is CommonJS and calls require() for Node's own modules.
  banner: { js: "import { createRequire as __thinLxcRequire } from 'node:module'; const require = __thinLxcRequire(import.meta.url);" },
};

await build({ ...common, entryPoints: ['dist/src/cli.js'], outdir: 'dist/bin', splitting: true, chunkNames: '[name]-[hash]' });
await build({
  ...common,
  entryPoints: readdirSync('dist/hooks').filter((file) => file.endsWith('.js')).map((file) => `dist/hooks/${file}`),
  outdir: 'dist/hooks',
  allowOverwrite: true,
});
