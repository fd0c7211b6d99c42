// The tree's layers, checked on the sources: what each folder may import, no import cycles between modules or folders, system commands
// started in one place, and hooks that load neither the CLI framework nor the template engine.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO } from '../helpers/paths.js';

/**
 * Lower numbers are lower layers. A module imports from its own folder or from a folder of a lower layer:
 * folders of one layer are siblings that do not know each other. The order, and why, is docs/development.md's table.
 */
const LAYER: Record<string, number> = {
  core: 0,
  union: 1,
  state: 2,
  lxc: 3,
  network: 3,
  forward: 4,
  container: 4,
  lifecycle: 5,
  commands: 6,
  hooks: 6,
  cli: 7,
};

interface Module {
  path: string;
  layer: string;
  imports: string[];
  packages: string[];
  text: string;
}

function sources(dir: string): string[] {
  return readdirSync(join(REPO, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

const modules = new Map<string, Module>(
  [...sources('src'), ...sources('hooks')].map((path) => {
    const text = readFileSync(join(REPO, path), 'utf8');
    const specs = [...text.matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map((match) => match[1]!);
    return [
      path,
      {
        path,
        layer: path.startsWith('hooks/') ? 'hooks' : path.split('/')[1]!,
        imports: specs.filter((spec) => spec.startsWith('.')).map((spec) => normalize(join(dirname(path), spec.replace(/\.js$/, '.ts')))),
        packages: specs.filter((spec) => !spec.startsWith('.') && !spec.startsWith('node:')),
        text,
      },
    ];
  }),
);

test('every module is in a layer, and imports only from its own folder or a lower layer', () => {
  const wrong: string[] = [];
  for (const module of modules.values()) {
    assert.ok(module.layer in LAYER, `${module.path} is in no known layer`);
    for (const target of module.imports) {
      const imported = modules.get(target);
      assert.ok(imported, `${module.path} imports ${target}, which does not exist`);
      if (imported!.layer !== module.layer && LAYER[imported!.layer]! >= LAYER[module.layer]!) wrong.push(`${module.path} -> ${target}`);
    }
  }
  assert.equal(wrong, [], 'imports that point up or sideways');
});

/** Every cycle in a directed graph, each as the path that closes it (a -> b -> a). */
function cyclesOf(edges: ReadonlyMap<string, readonly string[]>): string[] {
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[] = [];
  const visit = (node: string, trail: string[]) => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'visiting') {
      cycles.push([...trail.slice(trail.indexOf(node)), node].join(' -> '));
      return;
    }
    state.set(node, 'visiting');
    for (const next of edges.get(node) ?? []) visit(next, [...trail, node]);
    state.set(node, 'done');
  };
  for (const node of edges.keys()) visit(node, []);
  return cycles;
}

test('cyclesOf finds a cycle between folders: the container <-> lxc one this tree once had', () => {
  const edges = new Map([
    ['container', ['core', 'lxc']],
    ['lxc', ['core', 'container']],
    ['core', []],
  ]);
  assert.equal(cyclesOf(edges), ['container -> lxc -> container']);
  assert.equal(cyclesOf(new Map([['container', ['lxc']], ['lxc', ['core']]])), []);
});

test('no import cycles between modules', () => {
  assert.equal(cyclesOf(new Map([...modules.values()].map((module) => [module.path, module.imports]))), []);
});

test('no import cycles between folders', () => {
  const folders = new Map<string, string[]>();
  for (const module of modules.values()) {
    const targets = module.imports.map((target) => modules.get(target)?.layer).filter((layer): layer is string => layer !== undefined && layer !== module.layer);
    folders.set(module.layer, [...new Set([...(folders.get(module.layer) ?? []), ...targets])]);
  }
  assert.equal(cyclesOf(folders), []);
});

test('only src/core/commands.ts starts system commands', () => {
  const starters = [...modules.values()].filter((module) => /\bimport \{[^}]*\brun\b[^}]*\} from '[^']*exec\.js'/.test(module.text)).map((module) => module.path);
  assert.equal(starters, ['src/core/commands.ts']);
  const childProcess = [...modules.values()].filter((module) => module.text.includes("from 'node:child_process'")).map((module) => module.path);
  assert.equal(childProcess, ['src/core/exec.ts']);
});

test('hooks load neither commander nor Handlebars: they run at every container start', () => {
  for (const hook of [...modules.values()].filter((module) => module.layer === 'hooks')) {
    const reached = new Set<string>();
    const walk = (path: string) => {
      if (reached.has(path)) return;
      reached.add(path);
      for (const target of modules.get(path)?.imports ?? []) walk(target);
    };
    walk(hook.path);
    const packages = [...reached].flatMap((path) => modules.get(path)?.packages ?? []);
    assert.not.ok(packages.some((name) => name.startsWith('commander') || name.startsWith('handlebars')), `${hook.path} reaches ${packages.join(', ')}`);
  }
});

test('every module opens with a comment saying what it is for', () => {
  const bare = [...modules.values()].filter((module) => !/^(#!.*\n)?\/\/ \S/.test(module.text)).map((module) => relative('.', module.path));
  assert.equal(bare, []);
});

test.run();
