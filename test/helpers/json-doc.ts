// docs/json.md read as data: each section's table of fields, so that tests check the real output against the
// page itself and the two cannot drift apart.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './paths.js';

export interface DocumentedField {
  name: string;
  /** As the page writes it: `string`, `string or null`, `boolean`, `number or null`, `list of strings`. */
  type: string;
}

/**
 * The page's field tables by section: a heading's code spans name the outputs it documents (`list` and `show`
 * share one), a heading without any is known by its words in lower case ("the container summary").
 */
export function documentedSections(text = readFileSync(join(REPO, 'docs/json.md'), 'utf8')): Map<string, DocumentedField[]> {
  const sections = new Map<string, DocumentedField[]>();
  let keys: string[] = [];
  for (const line of text.split('\n')) {
    const heading = /^#{2,6} +(.*)$/.exec(line);
    if (heading) {
      const code = [...heading[1]!.matchAll(/`([^`]+)`/g)].map((match) => match[1]!);
      keys = code.length > 0 ? code : [heading[1]!.trim().toLowerCase()];
      continue;
    }
    const row = /^\| `([A-Za-z0-9]+)` \| ([^|]+) \|/.exec(line);
    if (!row) continue;
    for (const key of keys) sections.set(key, [...(sections.get(key) ?? []), { name: row[1]!, type: row[2]!.trim() }]);
  }
  return sections;
}

/** Whether a value is of a type as the page writes it; an unknown type word is an error in the page. */
export function hasDocumentedType(value: unknown, type: string): boolean {
  return type.split(' or ').some((alternative) => {
    switch (alternative) {
      case 'null':
        return value === null;
      case 'string':
        return typeof value === 'string';
      case 'boolean':
        return typeof value === 'boolean';
      case 'number':
        return typeof value === 'number';
      case 'list of strings':
        return Array.isArray(value) && value.every((item) => typeof item === 'string');
      default:
        throw new Error(`docs/json.md: unknown type "${alternative}"`);
    }
  });
}

/** The fields one output must have: its own section's and those of the sections it builds on. */
export function fieldsOf(sections: Map<string, DocumentedField[]>, ...keys: string[]): DocumentedField[] {
  return keys.flatMap((key) => {
    const fields = sections.get(key);
    if (!fields) throw new Error(`docs/json.md has no section for ${key}`);
    return fields;
  });
}

/**
 * What is wrong with one JSON object against its documented fields: a field missing or of another type, or a
 * field the page does not document. Empty when it matches.
 */
export function mismatches(object: unknown, fields: readonly DocumentedField[]): string[] {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) return [`not an object: ${JSON.stringify(object)}`];
  const record = object as Record<string, unknown>;
  const problems: string[] = [];
  for (const field of fields) {
    if (!(field.name in record)) problems.push(`${field.name} is missing`);
    else if (!hasDocumentedType(record[field.name], field.type)) problems.push(`${field.name} is ${JSON.stringify(record[field.name])}, not ${field.type}`);
  }
  const documented = new Set(fields.map((field) => field.name));
  for (const name of Object.keys(record)) if (!documented.has(name)) problems.push(`${name} is not documented`);
  return problems;
}
