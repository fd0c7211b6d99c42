// Writes a file so that a reader sees the old content or the new, never half of it.
import { renameSync, writeFileSync } from 'node:fs';

export function writeFileAtomic(path: string, content: string, mode = 0o644): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, content, { mode });
  renameSync(temporary, path);
}
