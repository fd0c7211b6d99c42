// Times thin-lxc create and a thin container's start against LXC's own tools, in the same run on the same base.
// Usage (root): npm run bench [-- --runs N] ; BENCH_BASE=NAME uses an existing base instead of a fresh busybox one.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../bin/cli.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const runsFlag = process.argv.indexOf('--runs');
const RUNS = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 7;

function sh(file: string, args: string[]): number {
  const started = performance.now();
  const result = spawnSync(file, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const elapsed = performance.now() - started;
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} failed: ${result.stderr}`);
  return elapsed;
}

function quiet(file: string, args: string[]): void {
  spawnSync(file, args, { stdio: 'ignore' });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Times `measure` RUNS times; `undo` runs after each timing and is not timed. */
function timeRuns(measure: (run: number) => number, undo: (run: number) => void = () => {}): number {
  const samples: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    samples.push(measure(run));
    undo(run);
  }
  return median(samples);
}

const tag = `tlb${process.pid.toString(36)}`;
const base = process.env.BENCH_BASE ?? `${tag}-base`;
const root = mkdtempSync('/tmp/thin-lxc-bench-');
const made: string[] = [];
try {
  if (!process.env.BENCH_BASE) {
    sh('lxc-create', ['-t', 'busybox', '-n', base]);
    made.push(base);
  }
  const rows: { what: string; command: string; medianMs: number }[] = [];
  const row = (what: string, command: string, medianMs: number) => rows.push({ what, command, medianMs });

  row('node startup (floor)', 'node -e 0', timeRuns(() => sh(process.execPath, ['-e', '0'])));
  row('thin-lxc create', `thin-lxc create NAME --base ${base}`, timeRuns(
    (run) => sh(process.execPath, [CLI, 'create', `${tag}-t${run}`, '--base', base, '--root', root]),
    (run) => quiet(process.execPath, [CLI, 'destroy', `${tag}-t${run}`, '--root', root]),
  ));
  row('lxc-copy snapshot', `lxc-copy -n ${base} -N NAME -s -B overlay`, timeRuns(
    (run) => sh('lxc-copy', ['-n', base, '-N', `${tag}-s${run}`, '-s', '-B', 'overlay']),
    (run) => quiet('lxc-destroy', ['-n', `${tag}-s${run}`]),
  ));
  row('lxc-copy full copy', `lxc-copy -n ${base} -N NAME`, timeRuns(
    (run) => sh('lxc-copy', ['-n', base, '-N', `${tag}-c${run}`]),
    (run) => quiet('lxc-destroy', ['-n', `${tag}-c${run}`]),
  ));

  // Start to RUNNING: the difference is what thin-lxc's pre-mount hook (a Node process plus mount) adds.
  const thin = `${tag}-thin`;
  const published = `${tag}-pub`;
  const snapshot = `${tag}-snap`;
  made.push(thin, published, snapshot);
  sh(process.execPath, [CLI, 'create', thin, '--base', base, '--root', root]);
  const benchPort = 40_000 + (process.pid % 10_000);
  const threePorts = [0, 1, 2].map((offset) => `${benchPort + offset}:${80 + offset}`).join(',');
  sh(process.execPath, [CLI, 'create', published, '--base', base, '--root', root, '-p', threePorts]);
  sh('lxc-copy', ['-n', base, '-N', snapshot, '-s', '-B', 'overlay']);
  const startToRunning = (name: string) => () => sh('lxc-start', ['-n', name, '-d']) + sh('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '20']);
  const stop = (name: string) => () => quiet('lxc-stop', ['-n', name, '-k']);
  row('start thin container', 'lxc-start -n NAME -d; lxc-wait -s RUNNING', timeRuns(startToRunning(thin), stop(thin)));
  row('start thin container, 3 published ports', 'lxc-start -n NAME -d; lxc-wait -s RUNNING', timeRuns(startToRunning(published), stop(published)));
  row('start lxc-copy snapshot', 'lxc-start -n NAME -d; lxc-wait -s RUNNING', timeRuns(startToRunning(snapshot), stop(snapshot)));
  const hookEnv = { LXC_HOOK_VERSION: '1', LXC_HOOK_TYPE: 'start-host' };
  row('mount hook startup (refuses at once)', 'node dist/hooks/thin-lxc-mount.js (wrong hook type)', timeRuns(() => {
    const started = performance.now();
    spawnSync(process.execPath, [fileURLToPath(new URL('../hooks/thin-lxc-mount.js', import.meta.url)), root], { env: { ...process.env, ...hookEnv }, stdio: 'ignore' });
    return performance.now() - started;
  }));

  const floor = rows[0]!.medianMs;
  const byWhat = new Map(rows.map((r) => [r.what, r.medianMs]));
  console.log(`thin-lxc bench: ${RUNS} runs each, medians, base ${base}, node ${process.version}`);
  for (const r of rows) console.log(`${r.what.padEnd(38)} ${r.medianMs.toFixed(1).padStart(8)} ms  ${(r.medianMs / floor).toFixed(2)}x node -e 0   ${r.command}`);
  const ratio = (a: string, b: string) => (byWhat.get(a)! / byWhat.get(b)!).toFixed(2);
  console.log(`create: ${ratio('thin-lxc create', 'lxc-copy snapshot')}x lxc-copy -s, ${ratio('thin-lxc create', 'lxc-copy full copy')}x a full lxc-copy`);
  const snapshotStart = byWhat.get('start lxc-copy snapshot')!;
  const added = (what: string) => `${(byWhat.get(what)! - snapshotStart).toFixed(0)} ms (${((byWhat.get(what)! - snapshotStart) / floor).toFixed(2)}x node -e 0)`;
  console.log(`start: thin-lxc's hooks add ${added('start thin container')} without ports, ${added('start thin container, 3 published ports')} with 3 published ports, over an lxc-copy -s snapshot's start`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(`${RESULTS}create.json`, JSON.stringify({ runs: RUNS, base, node: process.version, rows }, null, 2));
} finally {
  for (const name of made.reverse()) {
    quiet('lxc-stop', ['-n', name, '-k']);
    quiet('lxc-destroy', ['-n', name, '-f']);
  }
  rmSync(root, { recursive: true, force: true });
}
