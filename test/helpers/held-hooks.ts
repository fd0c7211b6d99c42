// Holding a container's stop between LXC's STOPPED and its ports-down hook: the window in which commands that
// trust LXC's word meet post-stop hooks still to come.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { type Cleanup, must, sh } from './host.js';

export interface HeldStop {
  /** Whether the held hook has been reached (a stop's post-stop hooks have begun). */
  reached(): boolean;
  /** Lets the held hook, and so the hooks after it, go on. */
  release(): Promise<unknown>;
  /** Puts the config back as it was, for a next start with no held hook. */
  unhold(): void;
}

/** Puts a post-stop hook that waits on a fifo before the ports-down hook in the config of the container in `dir`. */
export async function holdBeforePortsDown(dir: string, cleanup: Cleanup): Promise<HeldStop> {
  const held = mkdtempSync('/tmp/thin-lxc-held-');
  cleanup.add(() => rmSync(held, { recursive: true, force: true }));
  await must('mkfifo', [join(held, 'go')]);
  const release = () => sh('timeout', ['10', 'sh', '-c', `echo go > ${join(held, 'go')}`]);
  cleanup.add(release);
  const config = join(dir, 'image', 'config');
  const original = readFileSync(config, 'utf8');
  const lines = original.split('\n');
  const portsDown = lines.findIndex((line) => /^lxc\.hook\.post-stop = .*thin-lxc-ports-down\.js /.test(line));
  assert.ok(portsDown > 0, 'the config has the ports-down hook');
  lines.splice(portsDown, 0, `lxc.hook.post-stop = /bin/sh -c "touch ${held}/reached; timeout 120 cat ${held}/go >/dev/null"`);
  writeFileSync(config, lines.join('\n'));
  return { reached: () => existsSync(join(held, 'reached')), release, unhold: () => writeFileSync(config, original) };
}
