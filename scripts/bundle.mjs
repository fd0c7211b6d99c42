// Bundles the CLI and each hook into one self-contained CommonJS file. The sources stay ESM; what Node
// runs at every command and every container start is a single CommonJS script, because Node 20's ESM
// loader costs ~10 ms per process before any of our code runs (resolving, linking, translating every
// module), while a CommonJS script is compiled lazily in one go. bench/ shows the effect.
// File names stay .js (a package.json {"type":"commonjs"} beside them says how to read them), so the
// hook lines of containers made by earlier versions keep working.
import { build } from 'esbuild';
import { readdirSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

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
/**
 * Loads a Node built-in on first use instead of at startup. commander requires node:child_process at
 * the top (for executable subcommands thin-lxc does not have), and child_process pulls in net and
 * stream: ~6 ms of every command, though create and list run no process on their usual path.
 * The stand-in has a getter for each export, so `import { spawnSync }` and commander's
 * `childProcess.spawn` both reach the real module when they are used.
 */
function lazyBuiltin(name) {
  const exports = Object.keys(createRequire(import.meta.url)(`node:${name}`));
  return {
    name: `lazy-${name}`,
    setup(build) {
      build.onResolve({ filter: new RegExp(`^(node:)?${name}$`) }, (args) =>
        args.namespace === 'lazy' ? { path: `node:${name}`, external: true } : { path: name, namespace: 'lazy' },
      );
      build.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
        loader: 'js',
        contents: [
          `let loaded;`,
          `const load = () => (loaded ??= require('node:${name}'));`,
          `for (const key of ${JSON.stringify(exports)}) Object.defineProperty(module.exports, key, { get: () => load()[key], enumerable: true });`,
        ].join('\n'),
      }));
    },
  };
}

const commonjs = (dir) => writeFileSync(`${dir}/package.json`, '{ "type": "commonjs" }\n');

// Earlier builds split the CLI into chunks; start clean so no stale chunk is shipped.
rmSync('dist/bin', { recursive: true, force: true });
mkdirSync('dist/bin');
await build({ ...common, entryPoints: ['dist/src/bin.js'], outfile: 'dist/bin/thin-lxc.js', plugins: [lazyBuiltin('child_process')] });
// Handlebars' compiler, for custom templates only (src/render.ts loads it on first use).
await build({ ...common, entryPoints: ['node_modules/handlebars/lib/index.js'], outfile: 'dist/bin/handlebars.js', banner: {}, define: {} });
// The command itself: a few lines that run thin-lxc.js with its code cache (see src/launcher.ts).
await build({ ...common, entryPoints: ['dist/src/launcher.js'], outfile: 'dist/bin/cli.js' });
commonjs('dist/bin');

await build({
  ...common,
  entryPoints: readdirSync('dist/hooks').filter((file) => file.endsWith('.js')).map((file) => `dist/hooks/${file}`),
  outdir: 'dist/hooks',
  allowOverwrite: true,
});
commonjs('dist/hooks');
