// Which thin-lxc hook ran which system tool: wrappers first on the PATH that LXC hands its hooks, each noting the
// hook that ran it before it runs the real tool (so the rules it makes are real).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A directory of wrappers for `tools` that append "TOOL HOOK-FILE" to its file `ran`, then exec the real tool. */
export function markingPath(tools: readonly string[]): { dir: string; env: NodeJS.ProcessEnv; ran: () => string[] } {
  const dir = mkdtempSync('/tmp/thin-lxc-marks-');
  for (const tool of tools) {
    const real = ['/usr/sbin', '/sbin', '/usr/bin'].map((prefix) => join(prefix, tool)).find((path) => existsSync(path));
    if (!real) throw new Error(`${tool} is not installed`);
    writeFileSync(join(dir, tool), `#!/bin/sh\necho "${tool} $(tr '\\0' ' ' < /proc/$PPID/cmdline)" >> ${dir}/ran\nexec ${real} "$@"\n`, { mode: 0o755 });
  }
  return {
    dir,
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    ran: () => (existsSync(join(dir, 'ran')) ? readFileSync(join(dir, 'ran'), 'utf8').trim().split('\n') : []),
  };
}
