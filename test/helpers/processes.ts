// What end-to-end tests look for among the host's processes.
import { readdirSync, readFileSync } from 'node:fs';

/** The processes (other than this one) whose command line mentions `text`: pid and program. */
export function processesMentioning(text: string): { pid: number; program: string }[] {
  const found: { pid: number; program: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.some((arg) => arg.includes(text))) found.push({ pid: Number(entry), program: argv[0] ?? '' });
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** The pid of the LXC monitor (`[lxc monitor] LXCPATH NAME`, a daemonised start's title) of container `name`, or undefined. */
export function monitorOf(name: string, lxcpath = '/var/lib/lxc'): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0+$/, '') === `[lxc monitor] ${lxcpath} ${name}`) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}
