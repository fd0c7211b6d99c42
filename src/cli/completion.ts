// Tab completion: what the word under the cursor can be, worked out from commander's own commands and options,
// so that it never falls behind them. The bash script (completion/thin-lxc.bash) only asks and shows.
import type { Command, Option } from 'commander';
import { validateName } from '../core/validate.js';

/** Arguments that name a thin container (destroy, update, show, diff, commit, refresh). */
const CONTAINER_ARGUMENTS = new Set(['id-or-name', 'names']);
/** Options whose value is a path on the host: the shell completes file names. */
const PATH_OPTIONS = new Set(['--root', '--lxcpath', '--template']);

/** What to offer: these words, thin container names, LXC container names, or file names (the shell's own). */
export type Wanted =
  | { kind: 'words'; words: string[] }
  | { kind: 'containers' }
  | { kind: 'bases' }
  | { kind: 'files' };

export interface CompletionRequest {
  wanted: Wanted;
  /** The word being completed; candidates start with it. */
  current: string;
  /** What precedes the value in the word itself (`--base=`), kept in front of each candidate. */
  prefix: string;
  /** --root and --lxcpath as given earlier on the line: containers are read from there. */
  root?: string;
  lxcpath?: string;
}

/**
 * `words` are the line's words after `thin-lxc`, up to the cursor; the last is the one being completed
 * (empty after a space).
 */
export function completionRequest(program: Command, words: readonly string[]): CompletionRequest {
  const before = words.slice(0, -1);
  const current = words.at(-1) ?? '';
  let command = program;
  let helpFor = false;
  let positionals = 0;
  let pending: Option | null = null;
  let variadic: Option | null = null;
  let onlyArguments = false;
  const given: { root?: string; lxcpath?: string } = {};
  const note = (option: Option, value: string) => {
    if (option.long === '--root') given.root = value;
    if (option.long === '--lxcpath') given.lxcpath = value;
  };

  for (const word of before) {
    if (pending) {
      note(pending, word);
      variadic = pending.variadic ? pending : null;
      pending = null;
      continue;
    }
    if (!onlyArguments && word === '--') {
      onlyArguments = true;
      continue;
    }
    if (!onlyArguments && word.startsWith('-') && word.length > 1) {
      variadic = null;
      const [flag = '', value] = splitInline(word);
      const option = optionsOf(command, program).find((o) => o.long === flag || o.short === flag);
      if (option?.required && value === undefined) pending = option;
      else if (option && value !== undefined) note(option, value);
      continue;
    }
    // A variadic option (-p A B) takes words until the next option.
    if (variadic) continue;
    if (command === program && !helpFor) {
      if (word === 'help') helpFor = true;
      else command = subcommand(program, word) ?? program;
      if (command === program && !helpFor) positionals++;
      continue;
    }
    positionals++;
  }

  const request = (wanted: Wanted, prefix = ''): CompletionRequest => ({ wanted, current: current.slice(prefix.length), prefix, ...given });
  if (pending) return request(valueOf(pending));
  if (!onlyArguments && current.startsWith('--') && current.includes('=')) {
    const [flag = ''] = splitInline(current);
    const option = optionsOf(command, program).find((o) => o.long === flag);
    return request(option ? valueOf(option) : { kind: 'words', words: [] }, `${flag}=`);
  }
  if (!onlyArguments && current.startsWith('-')) {
    const flags = optionsOf(command, program).flatMap((o) => (o.hidden || !o.long ? [] : [o.long]));
    return request({ kind: 'words', words: [...new Set([...flags, '--help'])].sort() });
  }
  if (command === program) {
    const names = visibleCommands(program);
    return request({ kind: 'words', words: helpFor ? (positionals === 0 ? names : []) : positionals === 0 ? [...names, 'help'] : [] });
  }
  const declared = command.registeredArguments;
  const argument = declared[positionals] ?? (declared.at(-1)?.variadic ? declared.at(-1) : undefined);
  if (argument && CONTAINER_ARGUMENTS.has(argument.name())) return request({ kind: 'containers' });
  return request({ kind: 'words', words: [] });
}

/**
 * The candidates for a request, given the names it needs: whole words, starting with the word being completed.
 * Names come from state files and --lxcpath directories, which anyone who can write there may word: only those
 * thin-lxc itself accepts as names are offered, so Tab never puts shell text on (root's) command line.
 */
export function candidates(request: CompletionRequest, names: () => string[]): string[] {
  const words = request.wanted.kind === 'words' ? request.wanted.words : request.wanted.kind === 'files' ? [] : names().filter(isName);
  return [...new Set(words)].filter((word) => word.startsWith(request.current)).map((word) => `${request.prefix}${word}`);
}

function isName(word: string): boolean {
  try {
    validateName(word, 'name');
    return true;
  } catch {
    return false;
  }
}

/** Every command a user may type, with aliases, hidden ones left out. */
export function visibleCommands(program: Command): string[] {
  return program.commands.filter((c) => !isHidden(c)).flatMap((c) => [c.name(), ...c.aliases()]);
}

export function isHidden(command: Command): boolean {
  return (command as unknown as { _hidden?: boolean })._hidden === true;
}

function valueOf(option: Option): Wanted {
  if (option.long === '--base') return { kind: 'bases' };
  if (option.long && PATH_OPTIONS.has(option.long)) return { kind: 'files' };
  return { kind: 'words', words: option.argChoices ?? [] };
}

/** A command's own options, then the program's, which commander accepts anywhere on the line. */
function optionsOf(command: Command, program: Command): readonly Option[] {
  return command === program ? program.options : [...command.options, ...program.options];
}

function subcommand(program: Command, word: string): Command | undefined {
  return program.commands.find((c) => c.name() === word || c.aliases().includes(word));
}

function splitInline(word: string): [string, string | undefined] {
  const at = word.indexOf('=');
  return at < 0 || !word.startsWith('--') ? [word, undefined] : [word.slice(0, at), word.slice(at + 1)];
}
