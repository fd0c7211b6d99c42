// The README and the pages of docs/ link to each other by relative paths and #anchors: each must lead somewhere,
// so that moving a section never leaves a reader at a dead link.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO } from '../helpers/paths.js';

const pages = [
  'README.md',
  'CHANGELOG.md',
  ...readdirSync(join(REPO, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .map((file) => join('docs', file)),
].filter((page) => existsSync(join(REPO, page)));

/** A page's lines outside fenced code blocks, with inline code taken out (a link there is no link). */
function prose(text: string): string[] {
  let fenced = false;
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    else if (!fenced) lines.push(line.replace(/`[^`]*`/g, ''));
  }
  return lines;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as '-', repeats numbered. */
export function anchors(text: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} +(.*?) *#*$/.exec(line);
    if (!heading) continue;
    const slug = heading[1]!.replace(/`/g, '').toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    found.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return found;
}

test('anchors follow GitHub: punctuation dropped, code unquoted, repeats numbered', () => {
  assert.equal([...anchors("# LXC's own tools\n## `--json` fields\n## Names\n```\n# not a heading\n```\n## Names\n")], [
    'lxcs-own-tools',
    '--json-fields',
    'names',
    'names-1',
  ]);
});

test('the README and docs/ exist as this test expects', () => {
  assert.ok(pages.includes('README.md'), 'README.md is read');
  assert.ok(pages.length >= 6, `README.md and the pages of docs/ are read: ${pages.join(', ')}`);
});

for (const page of pages) {
  test(`every relative link and #anchor in ${page} leads somewhere`, () => {
    const broken: string[] = [];
    let links = 0;
    for (const line of prose(readFileSync(join(REPO, page), 'utf8'))) {
      for (const match of line.matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)) {
        const target = match[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: and the like are not this repository's
        links++;
        const [path, anchor] = target.split('#', 2) as [string, string | undefined];
        const file = path === '' ? join(REPO, page) : join(dirname(join(REPO, page)), decodeURIComponent(path));
        if (!existsSync(file)) {
          broken.push(`${target}: ${relative(REPO, file)} does not exist`);
          continue;
        }
        if (anchor !== undefined && !anchors(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${target}: no heading #${anchor} in ${relative(REPO, file)}`);
      }
    }
    assert.equal(broken, [], `broken links in ${page}`);
    if (page === 'README.md') assert.ok(links >= 5, `the README links to the docs (${links} links found)`);
  });
}

test.run();
