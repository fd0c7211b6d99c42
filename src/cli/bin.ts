// The thin-lxc command's entry point (bundled into dist/bin/thin-lxc.js, run by dist/bin/cli.js).
import { main } from './main.js';

// A reader that went away (thin-lxc list | head) wants no more output; that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

void main(process.argv.slice(2), process.env, process.cwd()).then((code) => {
  process.exitCode = code;
});
