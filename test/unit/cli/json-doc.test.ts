// docs/json.md against the CLI: the commands it documents are exactly those with --json, and its tables parse
// into fields of known types (the e2e test json.test.ts holds the real output to them).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isHidden } from '../../../src/cli/completion.js';
import { makeProgram } from '../../../src/cli/main.js';
import { documentedSections, hasDocumentedType, mismatches } from '../../helpers/json-doc.js';
import { REPO } from '../../helpers/paths.js';

const page = readFileSync(join(REPO, 'docs/json.md'), 'utf8');
const sections = documentedSections(page);
const commands = makeProgram({}, '/', false).commands.filter((command) => !isHidden(command));
const takesJson = commands.filter((command) => command.options.some((option) => option.long === '--json')).map((command) => command.name());

test('docs/json.md has a section for each command that takes --json, and for no other', () => {
  const documented = [...sections.keys()].filter((key) => key !== 'the container summary').map((key) => key.split(' ')[0]!);
  assert.equal([...new Set(documented)].sort(), [...takesJson].sort());
});

test('docs/json.md names each command without --json as printing text only', () => {
  const line = page.split('\n').find((text) => text.includes('print text only')) ?? '';
  for (const command of commands.filter((c) => !takesJson.includes(c.name()))) assert.ok(line.includes(`\`${command.name()}\``), `${command.name()} is named in: ${line}`);
});

test("every documented field's type is one the check knows", () => {
  for (const [section, fields] of sections) {
    assert.ok(fields.length > 0, `${section} has fields`);
    for (const field of fields) hasDocumentedType(null, field.type); // throws on an unknown type word
  }
});

test('a section per heading code span; list and show share one; the summary by its words', () => {
  const parsed = documentedSections('## The summary\n| `a` | string | x |\n## `list` and `show`\n| `b` | number or null | y |\n| c | x | not a field |\n');
  assert.equal([...parsed], [
    ['the summary', [{ name: 'a', type: 'string' }]],
    ['list', [{ name: 'b', type: 'number or null' }]],
    ['show', [{ name: 'b', type: 'number or null' }]],
  ]);
});

test('mismatches names a missing field, a wrong type and an undocumented field', () => {
  const fields = [
    { name: 'a', type: 'string or null' },
    { name: 'b', type: 'list of strings' },
    { name: 'c', type: 'boolean' },
  ];
  assert.equal(mismatches({ a: null, b: ['x'], c: false }, fields), []);
  assert.equal(mismatches({ a: 1, b: [1], d: true }, fields), ['a is 1, not string or null', 'b is [1], not list of strings', 'c is missing', 'd is not documented']);
  assert.equal(mismatches([], fields), ['not an object: []']);
});

test.run();
