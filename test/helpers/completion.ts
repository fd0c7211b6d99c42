// Drives bash's own completion machinery: a real bash sources the completion script, gets the line as bash
// would give it (COMP_LINE, COMP_POINT, COMP_WORDS, COMP_CWORD), calls the function `complete` registered
// for thin-lxc and prints COMPREPLY.
import { execa } from 'execa';

/**
 * What Tab offers at the end of `line` (its first word is the thin-lxc command to run). `PATH` lets a test
 * put an installed thin-lxc first.
 */
export async function tabCompletions(script: string, line: string, env: Record<string, string> = {}): Promise<string[]> {
  const driver = [
    'source "$1"',
    // The function bash would call: complete -p says it, as bash-completion's loader would find it.
    'function=$(complete -p thin-lxc | sed -n "s/.*-F \\([^ ]*\\) thin-lxc$/\\1/p")',
    '[[ -n $function ]] || { echo "no completion function for thin-lxc" >&2; exit 3; }',
    'COMP_LINE=$2; COMP_POINT=${#2}',
    // Words as bash splits them for completion: COMP_WORDBREAKS (= and :) separate words too.
    'COMP_WORDS=(); rest=$2',
    'while [[ -n $rest ]]; do',
    '  rest=${rest#"${rest%%[! ]*}"}; [[ -z $rest ]] && break',
    '  if [[ $rest == [=:]* ]]; then COMP_WORDS+=("${rest:0:1}"); rest=${rest:1}; continue; fi',
    '  word=${rest%%[ =:]*}; COMP_WORDS+=("$word"); rest=${rest:${#word}}',
    'done',
    '[[ $2 == *[\\ =:] ]] && COMP_WORDS+=("")',
    'COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))',
    'COMPREPLY=()',
    '"$function" thin-lxc "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const result = await execa('bash', ['--norc', '--noprofile', '-c', driver, 'bash', script, line], {
    reject: false,
    timeout: 30_000,
    stdin: 'ignore',
    env,
  });
  if (result.exitCode !== 0) throw new Error(`bash completion of ${JSON.stringify(line)} failed (${result.exitCode}): ${String(result.stderr)}`);
  return String(result.stdout)
    .split('\n')
    .filter((word) => word !== '');
}
