// The man page (docs/thin-lxc.1) against the CLI itself: every command and every option commander knows is in it,
// under its own command, so that it cannot fall behind.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command, Option } from 'commander';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isHidden } from '../../../src/cli/completion.js';
import { makeProgram } from '../../../src/cli/main.js';
import { REPO } from '../../helpers/paths.js';

/** The page as a reader sees its words: roff's escaped hyphens and font changes undone. */
const page = readFileSync(join(REPO, 'docs/thin-lxc.1'), 'utf8').replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '');

/** The text of each section and subsection, by its heading (.SH NAME, .SS "create [options] [name]"). */
function sections(text: string): Map<string, string> {
  const found = new Map<string, string>();
  let heading = '';
  for (const line of text.split('\n')) {
    const start = /^\.S[HS] +"?([^"]*)"?$/.exec(line);
    if (start) heading = start[1] ?? '';
    else found.set(heading, `${found.get(heading) ?? ''}${line}\n`);
  }
  return found;
}

const mentions = (text: string, flag: string) => new RegExp(`(^|[^\\w-])${flag}(?![\\w-])`, 'm').test(text);
const flagsOf = (option: Option) => [option.long, option.short].filter((flag): flag is string => flag !== undefined);
const program = makeProgram({}, '/', false);
const commands = program.commands.filter((command) => !isHidden(command));
const bySection = sections(page);
const headingOf = (command: Command) => [...bySection.keys()].find((heading) => heading.split(' ')[0] === command.name());
const sectionOf = (command: Command) => bySection.get(headingOf(command) ?? '\0');

test('the man page has a section for every command, under its name', () => {
  assert.ok(commands.length >= 12, `${commands.length} commands`);
  for (const command of [...commands, { name: () => 'help' } as Command]) assert.ok(sectionOf(command) !== undefined, `.SS ${command.name()}`);
});

test("each command's section names each of its options, long and short, and its aliases; its heading its arguments", () => {
  for (const command of commands) {
    const text = sectionOf(command) ?? '';
    for (const flag of command.options.flatMap(flagsOf)) assert.ok(mentions(text, flag), `${command.name()} ${flag}`);
    for (const alias of command.aliases()) assert.ok(mentions(text, alias), `${command.name()} alias ${alias}`);
    for (const argument of command.registeredArguments) assert.ok(headingOf(command)?.includes(argument.name()), `${command.name()} argument ${argument.name()}`);
  }
});

test('the global options are in GLOBAL OPTIONS', () => {
  const text = bySection.get('GLOBAL OPTIONS') ?? '';
  assert.ok(program.options.length >= 4);
  for (const flag of [...program.options.flatMap(flagsOf), '--help', '-h']) assert.ok(mentions(text, flag), flag);
});

test("the page's header carries the version --version prints, and the date of that version in the CHANGELOG", () => {
  const header = /^\.TH THIN\\-LXC 1 "([^"]*)" "thin\\-lxc ([^"]*)" "User Commands"$/m.exec(readFileSync(join(REPO, 'docs/thin-lxc.1'), 'utf8'));
  assert.ok(header, '.TH THIN\\-LXC 1 "DATE" "thin\\-lxc VERSION" "User Commands"');
  assert.is(header[2], program.version());
  const released = new RegExp(`^## ${program.version()?.replace(/\./g, '\\.')} \\((\\d{4}-\\d{2}-\\d{2})\\)$`, 'm').exec(readFileSync(join(REPO, 'CHANGELOG.md'), 'utf8'));
  assert.ok(released, `CHANGELOG has "## ${program.version()} (YYYY-MM-DD)"`);
  assert.is(header[1], released[1]);
});

test('the check itself tells a missing option from a present one', () => {
  assert.not.ok(mentions('.B --autostart-later\n--no-autostart\n', '--autostart'));
  assert.ok(mentions('.BR --autostart ", " --no-autostart\n', '--autostart'));
});

test.run();
