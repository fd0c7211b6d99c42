// Builds what ships, straight from the TypeScript sources: the command and each hook as one self-contained
// CommonJS file, so that no tsc output can be mistaken for them. CommonJS because Node 20's ESM loader costs
// ~10 ms per process before any of our code runs (resolving, linking, translating every module), while a
// CommonJS script is compiled lazily in one go; every command and every container start pays it.
// File names stay .js (a package.json {"type":"commonjs"} beside them says how to read them), so the hook
// lines of containers made by earlier versions keep working.
import { build } from 'esbuild';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import Handlebars from 'handlebars';

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  // The sources find their files relative to import.meta.url; in a CommonJS bundle that is this file.
  define: { 'import.meta.url': '__thinLxcModuleUrl' },
  banner: { js: "'use strict'; const __thinLxcModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
};

/** The default template, precompiled into the command (see src/lxc/default-template.ts). */
const precompiledTemplate = {
  name: 'precompiled-template',
  setup(builder) {
    builder.onLoad({ filter: /src\/lxc\/default-template\.ts$/ }, () => ({
      loader: 'js',
      contents: `export const DEFAULT_TEMPLATE_SPEC = ${Handlebars.precompile(readFileSync('templates/config.hbs', 'utf8'), { noEscape: true })};`,
    }));
  },
};

const commonjs = (dir) => writeFileSync(`${dir}/package.json`, '{ "type": "commonjs" }\n');

mkdirSync('dist/bin', { recursive: true });
await build({ ...common, entryPoints: ['src/cli/bin.ts'], outfile: 'dist/bin/thin-lxc.js', plugins: [precompiledTemplate] });
// The command itself: a few lines that run thin-lxc.js with its code cache (see src/cli/launcher.ts).
await build({ ...common, entryPoints: ['src/cli/launcher.ts'], outfile: 'dist/bin/cli.js' });
// Handlebars' compiler, for custom templates only (src/lxc/render.ts loads it on first use).
await build({ ...common, entryPoints: ['node_modules/handlebars/lib/index.js'], outfile: 'dist/bin/handlebars.js', banner: {}, define: {} });
commonjs('dist/bin');

await build({
  ...common,
  entryPoints: readdirSync('hooks').filter((file) => file.endsWith('.ts')).map((file) => `hooks/${file}`),
  outdir: 'dist/hooks',
});
commonjs('dist/hooks');
