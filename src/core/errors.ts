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

function lastLine(text: string): string {
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

/** A value quoted into a message may hold control characters: escape them so the message stays one line. */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, (char) => JSON.stringify(char).slice(1, -1));
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}
