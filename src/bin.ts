// The thin-lxc command's entry point (bundled into dist/bin/thin-lxc.js, run by dist/bin/cli.js).
import { main } from './cli.js';

void main(process.argv.slice(2), process.env, process.cwd()).then((code) => {
  process.exitCode = code;
});
