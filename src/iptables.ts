// The iptables commands thin-lxc runs (nft or legacy backend alike: only the iptables front end is used).
import { run } from './exec.js';

export function iptablesSave(): string {
  return run('iptables-save', []).stdout;
}

/** --noflush: only the chains the script names change; -w waits for other iptables users. */
export function iptablesRestore(script: string): void {
  run('iptables-restore', ['-w', '--noflush'], { input: script });
}
