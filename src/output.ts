// Writes a command's output straight to its file descriptor. process.stdout and process.stderr are
// streams whose construction loads node:stream and friends (~3 ms, on every command); thin-lxc writes
// a few lines, synchronously, so a write loop is all it needs.
import { writeSync } from 'node:fs';

const RETRY_MS = 1;

export function writeOut(text: string): void {
  writeAll(1, text);
}

export function writeErr(text: string): void {
  writeAll(2, text);
}

function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text);
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A reader that went away (thin-lxc list | head) wants no more; a non-blocking pipe that is full drains.
      if (code === 'EPIPE') return;
      if (code !== 'EAGAIN') throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, RETRY_MS);
    }
  }
}
