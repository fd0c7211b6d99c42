// The two kinds of failure thin-lxc reports, and the one place that turns them into a line for the user.

/** Bad input or host setup: the message says what is wrong and how to fix it. */
export class UserError extends Error {
  override name = 'UserError';
}

/** A system command that failed: keeps what is needed to explain it. */
export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    readonly command: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    const detail = lastLine(stderr) || `exit code ${exitCode ?? 'none (killed by a signal)'}`;
    super(`${command.join(' ')} failed: ${detail}`, options);
  }
}

/** Whether a failure is a full filesystem or quota: a write of ours (ENOSPC, EDQUOT), or a command that said so on stderr (rsync, mkfs). */
export function isNoSpace(error: unknown): boolean {
  return isQuotaFull(error) || (error as NodeJS.ErrnoException | null)?.code === 'ENOSPC' || (error instanceof CommandError && /No space left on device/i.test(error.stderr));
}

// xfs enforces a project quota even on root, so thin-lxc's own writes into a container's write layer can meet one.
function isQuotaFull(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'EDQUOT' || (error instanceof CommandError && /Disk quota exceeded/i.test(error.stderr));
}

/**
 * A full filesystem or quota, said as a host problem: `dir` is where the command was writing (a write's own error
 * names no path), `outcome` what did not happen, `fix` what to do besides freeing space there.
 */
export function noSpaceLeft(dir: string, outcome: string, fix: string, cause: unknown): UserError {
  if (isQuotaFull(cause)) {
    return new UserError(`a disk quota is full on the filesystem of ${dir} (${outcome}): free space under that quota or raise it (update --disk, setquota), ${fix}`, { cause });
  }
  return new UserError(`no space left on the filesystem of ${dir} (${outcome}): free space there, ${fix}`, { cause });
}

/** The last line of a tool's output that says something: where most tools put their reason. */
export function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((line) => line.trim() !== '');
  return lines.at(-1)?.trim() ?? '';
}

/** One line for stderr, or the whole stack with --debug. */
export function formatError(error: unknown, debug: boolean): string {
  if (debug && error instanceof Error && error.stack) return `thin-lxc: ${error.stack}`;
  if (error instanceof UserError || error instanceof CommandError) return `thin-lxc: ${oneLine(error.message)}`;
  const message = error instanceof Error ? error.message : String(error);
  return `thin-lxc: unexpected error: ${oneLine(firstLine(message))} (run again with --debug for details)`;
}

/**
 * A value quoted into a message may hold control characters: escaped so the message stays one line, and so a name a
 * container chose cannot drive the terminal (C1's U+009B is CSI, U+009D OSC to xterm and others).
 */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (char) =>
    char < ' ' ? JSON.stringify(char).slice(1, -1) : `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}
