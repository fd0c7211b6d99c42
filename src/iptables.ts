// The iptables commands thin-lxc runs (nft or legacy backend alike: only the iptables front end is used).
import { run } from './exec.js';

export function iptablesSave(): string {
  return run('iptables-save', []).stdout;
}

/**
 * One table's rules in iptables-save's form (-A lines, under a *TABLE line). iptables-save fetches
 * every table even with -t (16 ms with 30 containers' rules here); iptables -S fetches one (3 ms).
 */
export function iptablesTable(table: string): string {
  return `*${table}\n${run('iptables', ['-w', '-t', table, '-S']).stdout}`;
}

/** --noflush: only the chains the script names change; -w waits for other iptables users. */
export function iptablesRestore(script: string): void {
  run('iptables-restore', ['-w', '--noflush'], { input: script });
}

/** The same, reporting a script iptables refused instead of throwing: for callers with another way. */
export function tryIptablesRestore(script: string): boolean {
  return run('iptables-restore', ['-w', '--noflush'], { input: script, allowFailure: true }).exitCode === 0;
}
