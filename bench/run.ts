// thin-lxc's performance claims, measured against LXC's own tools in the same run (npm run bench, as root).
// Sections: create, hooks, start, scale, rules, forward, commit, boot, disk, unprivileged (--only a,b); --runs N (median of N, default 5); --scale N (1000);
// --boot N (40); --before DIR: scale also measures the build in DIR (DIR/dist/bin/cli.js, e.g. a worktree of an older
// commit after npm run build), run by run in turn with this one;
// --inherit-env keeps NODE_EXTRA_CA_CERTS and NODE_OPTIONS (see SCRUBBED).
// The Debian base (thin-lxc-bench-debian, about 300 MB) is made once and kept between runs.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../dist/bin/cli.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const flag = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] ?? fallback : fallback;
};
const RUNS = Number(flag('runs', '5'));
const SCALE = Number(flag('scale', '1000'));
const BEFORE = process.argv.includes('--before') ? join(flag('before', ''), 'dist/bin/cli.js') : null;
const ONLY = new Set(flag('only', 'create,hooks,start,scale,rules,forward,commit,boot,disk,unprivileged').split(','));
const BOOT = Number(flag('boot', '40'));
const DEBIAN = 'thin-lxc-bench-debian';
// Variables that change what every Node process costs, for thin-lxc and the node -e 0 floor alike:
// NODE_EXTRA_CA_CERTS makes Node parse a whole CA bundle at startup (~60 ms on the reference machine, more
// than Node's own startup). A root shell on a server rarely sets them; --inherit-env keeps them.
const SCRUBBED = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS'].filter((name) => process.env[name] !== undefined);
if (!process.argv.includes('--inherit-env')) for (const name of SCRUBBED) delete process.env[name];
const tag = `tlb${process.pid.toString(36)}`;

interface Row {
  section: string;
  what: string;
  value: number;
  unit: string;
  ratio?: string;
}
const rows: Row[] = [];
const made: string[] = [];
const root = mkdtempSync('/tmp/thin-lxc-bench-');

function sh(file: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): number {
  const started = performance.now();
  const result = spawnSync(file, args, { stdio: ['pipe', 'ignore', 'pipe'], encoding: 'utf8', ...options });
  const elapsed = performance.now() - started;
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} failed: ${result.stderr}`);
  return elapsed;
}
const timed = (work: () => unknown) => {
  const started = performance.now();
  work();
  return performance.now() - started;
};
const output = (file: string, args: string[]) => spawnSync(file, args, { encoding: 'utf8' }).stdout;
const quiet = (file: string, args: string[]) => void spawnSync(file, args, { stdio: 'ignore' });
const thin = (...args: string[]) => sh(process.execPath, [CLI, ...args, '--root', root]);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const nodeFloor = () => sh(process.execPath, ['-e', '0']);
/** The median of node -e 0 runs taken between the runs of the last timeRuns: ratios use it, so a VM's drift cancels out. */
let floorNearby = Number.NaN;

function timeRuns(measure: (run: number) => number, undo: (run: number) => void = () => {}, runs = RUNS): number {
  const samples: number[] = [];
  const floors: number[] = [];
  for (let run = 0; run < runs; run++) {
    floors.push(nodeFloor());
    samples.push(measure(run));
    undo(run);
  }
  floorNearby = median(floors);
  return median(samples);
}

const timesFloor = (value: number) => `${(value / floorNearby).toFixed(2)}x node -e 0 (${floorNearby.toFixed(1)} ms in these runs)`;

function record(section: string, what: string, value: number, unit = 'ms', ratio?: string): number {
  rows.push({ section, what, value, unit, ...(ratio ? { ratio } : {}) });
  console.log(`${section.padEnd(8)} ${what.padEnd(58)} ${value.toFixed(unit === 'ms' ? 1 : 0).padStart(9)} ${unit.padEnd(5)} ${ratio ?? ''}`);
  return value;
}

function track(name: string): string {
  made.push(name);
  return name;
}

function ensureBase(name: string, template: string[]): void {
  if (spawnSync('lxc-info', ['-n', name], { stdio: 'ignore' }).status === 0) return;
  console.log(`making base ${name} (${template.join(' ')}); kept for later runs`);
  sh('lxc-create', ['-n', name, ...template]);
}

const startToRunning = (name: string) => () => sh('lxc-start', ['-n', name, '-d']) + sh('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '30']);
const stopNow = (name: string) => () => sh('lxc-stop', ['-n', name, '-k']);
const publish = (first: number, count: number) => Array.from({ length: count }, (_, i) => `${first + i}:${80 + i}`).join(',');

try {
  if (SCRUBBED.length) console.log(`${process.argv.includes('--inherit-env') ? 'keeping' : 'without'} ${SCRUBBED.join(', ')} for every process measured`);
  record('floor', 'node -e 0', timeRuns(nodeFloor));
  ensureBase(DEBIAN, ['-t', 'debian', '--', '-r', 'bookworm']);
  const busybox = track(`${tag}-bb`);
  sh('lxc-create', ['-t', 'busybox', '-n', busybox]);
  const debianSize = Number(output('du', ['-s', '-B1', `/var/lib/lxc/${DEBIAN}/rootfs`]).split('\t')[0]);
  record('base', `${DEBIAN} rootfs`, debianSize / 2 ** 20, 'MiB');

  if (ONLY.has('create')) {
    for (const [label, base] of [['Debian', DEBIAN], ['busybox', busybox]] as const) {
      const created = record('create', `thin-lxc create (${label} base)`, timeRuns(
        (run) => thin('create', `${tag}-c${run}`, '--base', base),
        (run) => quiet(process.execPath, [CLI, 'destroy', `${tag}-c${run}`, '--root', root]),
      ));
      rows.at(-1)!.ratio = timesFloor(created);
      console.log(`${''.padEnd(80)} ${timesFloor(created)}`);
    }
    const snapshot = record('create', `lxc-copy -s -B overlay (${DEBIAN})`, timeRuns(
      (run) => sh('lxc-copy', ['-n', DEBIAN, '-N', `${tag}-s${run}`, '-s', '-B', 'overlay']),
      (run) => quiet('lxc-destroy', ['-n', `${tag}-s${run}`]),
    ));
    const full = record('create', `lxc-copy, full copy (${DEBIAN})`, timeRuns(
      (run) => sh('lxc-copy', ['-n', DEBIAN, '-N', `${tag}-f${run}`]),
      (run) => quiet('lxc-destroy', ['-n', `${tag}-f${run}`]),
    ));
    void snapshot;
    void full;
  }

  if (ONLY.has('hooks')) {
    // Each hook as LXC runs it, refusing a wrong hook type: Node's startup and the hook's bundle, no work.
    for (const hook of ['mount', 'ports-up', 'ports-down', 'ephemeral', 'destroy']) {
      const file = fileURLToPath(new URL(`../../dist/hooks/thin-lxc-${hook}.js`, import.meta.url));
      const env = { ...process.env, LXC_HOOK_VERSION: '1', LXC_HOOK_TYPE: 'none' };
      const line = ['-u', 'NODE_OPTIONS', '-u', 'NODE_EXTRA_CA_CERTS', process.execPath, file, '/nonexistent'];
      const started = timeRuns(() => timed(() => spawnSync('/usr/bin/env', line, { env, stdio: 'ignore' })));
      record('hooks', `${hook} hook: start, load, refuse a wrong hook type`, started, 'ms', timesFloor(started));
    }
  }

  if (ONLY.has('start')) {
    const withPorts = track(`${tag}-p`);
    const noPorts = track(`${tag}-n`);
    const snapshot = track(`${tag}-snap`);
    thin('create', withPorts, '--base', DEBIAN, '-p', publish(42_000, 2));
    thin('create', noPorts, '--base', DEBIAN);
    sh('lxc-copy', ['-n', DEBIAN, '-N', snapshot, '-s', '-B', 'overlay']);
    const snapStart = record('start', 'lxc-copy -s snapshot: lxc-start -d to RUNNING', timeRuns(startToRunning(snapshot), stopNow(snapshot)));
    const snapStop = record('start', 'lxc-copy -s snapshot: lxc-stop -k', timeRuns((run) => (startToRunning(snapshot)(), stopNow(snapshot)()), () => {}, RUNS));
    for (const [label, name] of [['thin, no ports', noPorts], ['thin, 2 published ports', withPorts]] as const) {
      const start = record('start', `${label}: lxc-start -d to RUNNING`, timeRuns(startToRunning(name), stopNow(name)));
      rows.at(-1)!.ratio = `hooks add ${timesFloor(start - snapStart)}`;
      console.log(`${''.padEnd(80)} ${rows.at(-1)!.ratio}`);
      const stop = record('start', `${label}: lxc-stop -k`, timeRuns(() => (startToRunning(name)(), stopNow(name)())));
      rows.at(-1)!.ratio = `hooks add ${timesFloor(stop - snapStop)}`;
      console.log(`${''.padEnd(80)} ${rows.at(-1)!.ratio}`);
    }
  }

  if (ONLY.has('commit')) {
    // A thin container of the Debian base, its whole merged view copied by commit, against LXC's full copy
    // (lxc-copy, rsync) of the committed image: the same files. LXC's tools refuse to copy the thin container itself.
    const source = track(`${tag}-cm`);
    thin('create', source, '--base', DEBIAN);
    const runs = Math.min(RUNS, 3);
    const committed = record('commit', `thin-lxc commit (thin container of ${DEBIAN})`, timeRuns(
      (run) => thin('commit', source, track(`${tag}-img${run}`)),
      (run) => run > 0 && quiet('lxc-destroy', ['-n', `${tag}-img${run}`]),
      runs,
    ));
    const copied = record('commit', 'lxc-copy, full copy of the committed image', timeRuns(
      (run) => sh('lxc-copy', ['-n', `${tag}-img0`, '-N', `${tag}-cp${run}`]),
      (run) => quiet('lxc-destroy', ['-n', `${tag}-cp${run}`]),
      runs,
    ));
    rows.at(-1)!.ratio = `commit takes ${(committed / copied).toFixed(2)}x lxc-copy's time`;
    console.log(`${''.padEnd(80)} ${rows.at(-1)!.ratio}`);
  }

  if (ONLY.has('unprivileged')) unprivilegedSection();

  if (ONLY.has('scale')) scaleSection();

  if (ONLY.has('rules')) {
    // The running containers are busybox ones: what grows is the number of rules, not the base.
    const measured = track(`${tag}-r`);
    thin('create', measured, '--base', busybox, '-p', publish(43_000, 5));
    const running: string[] = [];
    const runUpTo = (count: number) => {
      while (running.length < count) {
        const name = track(`${tag}-bg${running.length}`);
        thin('create', name, '--base', busybox, '-p', publish(44_000 + running.length * 5, 5));
        startToRunning(name)();
        running.push(name);
      }
    };
    // The control: LXC's own start may grow with the containers on the bridge; thin-lxc's part is the difference.
    const control = track(`${tag}-rs`);
    sh('lxc-copy', ['-n', busybox, '-N', control, '-s', '-B', 'overlay']);
    const both = (others: number) => {
      const thinStart = record('rules', `thin, 5 ports: start with ${others} other thin container(s) running`, timeRuns(startToRunning(measured), stopNow(measured)));
      const floorThen = floorNearby;
      const snapStart = record('rules', `lxc-copy -s snapshot: start with ${others} running`, timeRuns(startToRunning(control), stopNow(control)));
      // In node -e 0 units too: 30 running containers also take CPU from every process, Node's own startup included.
      floorNearby = median([floorThen, floorNearby]);
      rows.at(-1)!.ratio = `thin-lxc's part: ${(thinStart - snapStart).toFixed(1)} ms = ${timesFloor(thinStart - snapStart)}`;
      console.log(`${''.padEnd(80)} ${rows.at(-1)!.ratio}`);
    };
    runUpTo(1);
    both(1);
    runUpTo(30);
    both(30);
    for (const name of running) quiet('lxc-stop', ['-n', name, '-k']);
  }

  if (ONLY.has('forward')) forwardSection(busybox);
  // busybox: 40 systemd containers at once exceed a stock host's fs.inotify.max_user_instances (128), LXC's own snapshots too.
  if (ONLY.has('boot')) bootSection(busybox);

  if (ONLY.has('disk')) diskSection();

  mkdirSync(RESULTS, { recursive: true });
  const machine = {
    node: process.version,
    cores: output('nproc', []).trim(),
    kernel: output('uname', ['-r']).trim(),
    lxc: output('lxc-start', ['--version']).trim(),
    environment:
      SCRUBBED.length === 0
        ? 'neither NODE_EXTRA_CA_CERTS nor NODE_OPTIONS was set'
        : `${process.argv.includes('--inherit-env') ? 'kept' : 'removed'} ${SCRUBBED.join(', ')}`,
  };
  writeFileSync(join(RESULTS, 'bench.json'), JSON.stringify({ runs: RUNS, scale: SCALE, boot: BOOT, machine, rows }, null, 2));
  console.log(`\nwritten to bench/results/bench.json (${JSON.stringify(machine)})`);
} finally {
  for (const name of made.reverse()) {
    quiet('lxc-stop', ['-n', name, '-k']);
    quiet('lxc-destroy', ['-n', name, '-f']);
  }
  quiet('ip', ['netns', 'del', `${tag}ns`]);
  quiet('ip', ['link', 'del', `${tag}h`]);
  rmSync(root, { recursive: true, force: true });
}

/**
 * create against the number of thin containers: SCALE made one after another in the root, each registered in the
 * lxcpath (first 10 against last 10), and a create of the Debian base, with an address, with none of them there and
 * with all SCALE, by this build and by --before's, run by run in turn. The SCALE have a base without network: a /24
 * bridge holds 253 addresses, not 1,000. All SCALE are destroyed after, also when a step failed.
 */
function scaleSection(): void {
  const lxcpath = output('lxc-config', ['lxc.lxcpath']).trim() || '/var/lib/lxc';
  const bare = track(`${tag}-bn`);
  sh('lxc-create', ['-t', 'busybox', '-n', bare]);
  const config = join(lxcpath, bare, 'config');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/^lxc\.net\.0\.type\s*=.*$/m, 'lxc.net.0.type = empty').replace(/^lxc\.net\.0\.(link|flags|hwaddr)\s*=.*\n/gm, ''));
  const builds = [['this build', CLI], ...(BEFORE ? [['--before build', BEFORE]] : [])] as const;
  /** A create of the Debian base by each build in turn, RUNS times, each destroyed by its own build: medians. */
  const debianCreates = (label: string) => {
    const samples = builds.map(() => [] as number[]);
    const floors: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      floors.push(nodeFloor());
      builds.forEach(([, cli], index) => {
        const name = track(`${tag}-m${label}${index}r${run}`);
        samples[index]!.push(sh(process.execPath, [cli, 'create', name, '--base', DEBIAN, '--root', root]));
        quiet(process.execPath, [cli, 'destroy', name, '--root', root]);
      });
    }
    return { medians: samples.map(median), floor: median(floors) };
  };
  const inFloors = (value: number, floor: number) => `${(value / floor).toFixed(2)}x node -e 0 (${floor.toFixed(1)} ms)`;
  const filled: string[] = [];
  try {
    const empty = debianCreates('0');
    const times: number[] = [];
    const started = performance.now();
    for (let index = 0; index < SCALE; index++) {
      filled.push(`${tag}-x${index}`);
      times.push(thin('create', filled.at(-1)!, '--base', bare));
    }
    const filling = performance.now() - started;
    const first = record('scale', `create (no network), first 10 of ${SCALE} (median)`, median(times.slice(0, 10)));
    const last = record('scale', `create (no network), last 10 of ${SCALE} (median)`, median(times.slice(-10)));
    rows.at(-1)!.ratio = `${((last - first) / (SCALE - 10)).toFixed(3)} ms per container (${(filling / 1000).toFixed(0)} s for all ${SCALE})`;
    console.log(`${''.padEnd(80)} ${rows.at(-1)!.ratio}`);
    const full = debianCreates('n');
    builds.forEach(([label], index) => {
      const none = empty.medians[index]!;
      record('scale', `create (${DEBIAN}), ${label}: root empty`, none, 'ms', inFloors(none, empty.floor));
      const at = full.medians[index]!;
      record('scale', `create (${DEBIAN}), ${label}: ${SCALE} in the root and the lxcpath`, at, 'ms', `${inFloors(at, full.floor)}; ${((at - none) / SCALE).toFixed(3)} ms per container`);
    });
    const used = Number(output('du', ['-s', '-B1', root]).split('\t')[0]);
    record('scale', `disk per thin container (du of the root / ${SCALE})`, used / SCALE / 1024, 'KiB');
  } finally {
    const started = performance.now();
    // Four at a time: each destroy is mostly Node's startup, which overlaps; their teardowns take turns on 'create'.
    spawnSync('xargs', ['-P', '4', '-I', 'NAME', process.execPath, CLI, 'destroy', 'NAME', '--root', root], { input: filled.join('\n'), stdio: ['pipe', 'ignore', 'ignore'] });
    // Whatever is left (a destroy that failed) goes with the bench's own cleanup, by LXC's tools, at the end.
    const left = filled.filter((name) => existsSync(join(root, name)) || existsSync(join(lxcpath, name)));
    left.forEach(track);
    console.log(`scale: destroyed ${filled.length - left.length} of ${filled.length} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
}

/**
 * What --disk adds on a root without project quota (a sparse ext4 image per container): to create (mkfs.ext4 -d)
 * and to start (the mount hook's loop mount), against the same without it and LXC's own overlay snapshot.
 */
function diskSection(): void {
  for (const size of ['2G', '20G']) {
    const created = record('disk', `thin-lxc create --disk ${size} (${DEBIAN} base, image)`, timeRuns(
      (run) => thin('create', `${tag}-d${run}`, '--base', DEBIAN, '--disk', size),
      (run) => quiet(process.execPath, [CLI, 'destroy', `${tag}-d${run}`, '--root', root]),
    ));
    rows.at(-1)!.ratio = timesFloor(created);
    console.log(`${''.padEnd(80)} ${timesFloor(created)}`);
  }
  const plain = record('disk', `thin-lxc create, no --disk (${DEBIAN} base)`, timeRuns(
    (run) => thin('create', `${tag}-e${run}`, '--base', DEBIAN),
    (run) => quiet(process.execPath, [CLI, 'destroy', `${tag}-e${run}`, '--root', root]),
  ));
  rows.at(-1)!.ratio = timesFloor(plain);
  const snapshot = record('disk', `lxc-copy -s -B overlay (${DEBIAN})`, timeRuns(
    (run) => sh('lxc-copy', ['-n', DEBIAN, '-N', `${tag}-ds${run}`, '-s', '-B', 'overlay']),
    (run) => quiet('lxc-destroy', ['-n', `${tag}-ds${run}`]),
  ));
  rows.at(-1)!.ratio = timesFloor(snapshot);
  const limited = track(`${tag}-dl`);
  const free = track(`${tag}-df`);
  const snap = track(`${tag}-dsnap`);
  thin('create', limited, '--base', DEBIAN, '--disk', '2G');
  thin('create', free, '--base', DEBIAN);
  sh('lxc-copy', ['-n', DEBIAN, '-N', snap, '-s', '-B', 'overlay']);
  const snapStart = record('disk', 'lxc-copy -s snapshot: lxc-start -d to RUNNING', timeRuns(startToRunning(snap), stopNow(snap)));
  const freeStart = record('disk', 'thin, no --disk: lxc-start -d to RUNNING', timeRuns(startToRunning(free), stopNow(free)));
  rows.at(-1)!.ratio = `hooks add ${timesFloor(freeStart - snapStart)}`;
  const limitedStart = record('disk', 'thin, --disk 2G (image): lxc-start -d to RUNNING', timeRuns(startToRunning(limited), stopNow(limited)));
  rows.at(-1)!.ratio = `the image adds ${(limitedStart - freeStart).toFixed(1)} ms, ${timesFloor(limitedStart - freeStart)}`;
  console.log(`${''.padEnd(80)} ${rows.at(-1)!.ratio}`);
  const allocated = Number(output('du', ['-s', '-B1', join(root, limited, 'disk.img')]).split('\t')[0]);
  record('disk', 'host space a fresh 2G image takes (sparse)', allocated / 2 ** 20, 'MiB');
}

/**
 * Unprivileged thin containers (idmapped layers, nothing copied) against privileged ones, and against what a user
 * would otherwise do to run the base unprivileged: a full copy of it (lxc-copy) with every owner shifted into the
 * map (chown, then the setuid and setgid bits chown cleared put back), started by LXC as a plain unprivileged
 * container. All on the Debian base.
 */
function unprivilegedSection(): void {
  const map = { host: 100000, range: 65536 };
  // Interleaved, privileged then unprivileged in each run, so that a busy host's drift weighs on both alike.
  const creates = { privileged: [] as number[], unprivileged: [] as number[] };
  const floors: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    floors.push(nodeFloor());
    creates.privileged.push(thin('create', `${tag}-pv${run}`, '--base', DEBIAN));
    creates.unprivileged.push(thin('create', `${tag}-uv${run}`, '--base', DEBIAN, '--unprivileged'));
    for (const name of [`${tag}-pv${run}`, `${tag}-uv${run}`]) quiet(process.execPath, [CLI, 'destroy', name, '--root', root]);
  }
  floorNearby = median(floors);
  const privileged = record('unpriv', `thin-lxc create (${DEBIAN})`, median(creates.privileged), 'ms', timesFloor(median(creates.privileged)));
  const unprivileged = record('unpriv', `thin-lxc create --unprivileged (${DEBIAN})`, median(creates.unprivileged));
  rows.at(-1)!.ratio = `${timesFloor(unprivileged)}; ${(unprivileged / privileged).toFixed(2)}x a privileged create`;
  console.log(`${''.padEnd(80)} ${rows.at(-1)!.ratio}`);

  const runs = Math.min(RUNS, 3);
  const copies: number[] = [];
  const shifts: number[] = [];
  for (let run = 0; run < runs; run++) {
    const name = track(`${tag}-sh${run}`);
    copies.push(sh('lxc-copy', ['-n', DEBIAN, '-N', name]));
    // The container's root must also pass through its directory (lxc-copy makes it 0770) to reach its rootfs.
    shifts.push(shiftOwners(`/var/lib/lxc/${name}/rootfs`, map.host) + sh('chmod', ['o+x', `/var/lib/lxc/${name}`]));
    if (run > 0) quiet('lxc-destroy', ['-n', name]);
  }
  record('unpriv', `lxc-copy, full copy (${DEBIAN})`, median(copies));
  record('unpriv', `shift of the copy: chown of every file by ${map.host}, setuid bits put back`, median(shifts));
  const shifted = median(copies.map((copy, run) => copy + shifts[run]!));
  record('unpriv', 'shifted full copy: both', shifted, 'ms', `${(shifted / unprivileged).toFixed(1)}x an unprivileged create`);

  // The shifted copy as LXC's own unprivileged container: the same map, no hooks.
  const own = `${tag}-sh0`;
  const config = `/var/lib/lxc/${own}/config`;
  writeFileSync(config, `${output('cat', [config])}lxc.idmap = u 0 ${map.host} ${map.range}\nlxc.idmap = g 0 ${map.host} ${map.range}\n`);
  const thinPrivileged = track(`${tag}-ps`);
  const thinUnprivileged = track(`${tag}-us`);
  thin('create', thinPrivileged, '--base', DEBIAN);
  thin('create', thinUnprivileged, '--base', DEBIAN, '--unprivileged');
  const starts = { own: [] as number[], privileged: [] as number[], unprivileged: [] as number[] };
  const floors2: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    floors2.push(nodeFloor());
    for (const [key, name] of [['own', own], ['privileged', thinPrivileged], ['unprivileged', thinUnprivileged]] as const) {
      starts[key].push(startToRunning(name)());
      stopNow(name)();
    }
  }
  floorNearby = median(floors2);
  const ownStart = record('unpriv', 'LXC unprivileged container on the shifted copy: lxc-start -d to RUNNING', median(starts.own));
  for (const [label, key] of [['thin, privileged', 'privileged'], ['thin, unprivileged', 'unprivileged']] as const) {
    const start = record('unpriv', `${label}: lxc-start -d to RUNNING`, median(starts[key]));
    rows.at(-1)!.ratio = `hooks add ${timesFloor(start - ownStart)} to LXC's unprivileged start`;
    console.log(`${''.padEnd(80)} ${rows.at(-1)!.ratio}`);
  }
}

/** Adds `by` to the owner and group of every file under `dir` (not following symlinks), keeping setuid and setgid bits. */
function shiftOwners(dir: string, by: number): number {
  return timed(() => {
    const special = output('find', [dir, '-xdev', '-perm', '/6000', '!', '-type', 'l', '-printf', '%m %p\\n']).split('\n').filter(Boolean);
    const owners = new Set(output('find', [dir, '-xdev', '-printf', '%U:%G\\n']).split('\n').filter(Boolean));
    for (const owner of owners) {
      const [uid, gid] = owner.split(':').map(Number) as [number, number];
      sh('find', [dir, '-xdev', '-uid', String(uid), '-gid', String(gid), '-exec', 'chown', '-h', `${uid + by}:${gid + by}`, '{}', '+']);
    }
    for (const line of special) {
      const space = line.indexOf(' ');
      sh('chmod', [line.slice(0, space), line.slice(space + 1)]);
    }
  });
}

/** Throughput of 1 GiB from a client to a sink in a container: through a published port, straight, and through socat. */
function forwardSection(base: string): void {
  const name = track(`${tag}-fw`);
  const port = 46_000;
  thin('create', name, '--base', base, '-p', `${port}:5001`);
  copyFileSync('/usr/bin/socat', join(root, name, 'wlayer/socat'));
  startToRunning(name)();
  const ip = JSON.parse(spawnSync(process.execPath, [CLI, 'show', name, '--root', root, '--json'], { encoding: 'utf8' }).stdout).ip as string;
  sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', '(/socat -u TCP4-LISTEN:5001,fork,reuseaddr OPEN:/dev/null </dev/null >/dev/null 2>&1 &); sleep 0.5']);
  // Another host: a network namespace on a veth pair, routed to the bridge through the host.
  const ns = `${tag}ns`;
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['link', 'add', `${tag}h`, 'type', 'veth', 'peer', 'name', `${tag}n`]);
  sh('ip', ['link', 'set', `${tag}n`, 'netns', ns]);
  sh('ip', ['addr', 'add', '10.213.57.1/30', 'dev', `${tag}h`]);
  sh('ip', ['link', 'set', `${tag}h`, 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', '10.213.57.2/30', 'dev', `${tag}n`]);
  sh('ip', ['-n', ns, 'link', 'set', `${tag}n`, 'up']);
  sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', '10.213.57.1']);
  const proxyPort = 46_001;
  const proxy = spawnSync('sh', ['-c', `socat TCP4-LISTEN:${proxyPort},fork,reuseaddr TCP4:${ip}:5001 </dev/null >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' }).stdout.trim();
  spawnSync('sleep', ['0.3']);
  const mib = 1024;
  const send = (prefix: string[], address: string, to: number) => () =>
    sh(prefix[0] ?? 'sh', [...prefix.slice(1), 'sh', '-c', `dd if=/dev/zero bs=1M count=${mib} 2>/dev/null | socat -u - TCP4:${address}:${to}`].filter(Boolean));
  const inNs = ['ip', 'netns', 'exec', ns];
  const local = ['env'];
  const rate = (ms: number) => (mib / (ms / 1000));
  try {
    const direct = rate(timeRuns(send(inNs, ip, 5001), () => {}, 3));
    record('forward', 'another host -> container address (direct)', direct, 'MiB/s');
    const viaPort = rate(timeRuns(send(inNs, '10.213.57.1', port), () => {}, 3));
    record('forward', 'another host -> published port', viaPort, 'MiB/s', `${(viaPort / direct).toFixed(2)}x direct`);
    const localDirect = rate(timeRuns(send(local, ip, 5001), () => {}, 3));
    record('forward', 'host -> container address (direct)', localDirect, 'MiB/s');
    const viaLoopback = rate(timeRuns(send(local, '127.0.0.1', port), () => {}, 3));
    record('forward', 'host -> 127.0.0.1:published port', viaLoopback, 'MiB/s', `${(viaLoopback / localDirect).toFixed(2)}x direct`);
    const viaSocat = rate(timeRuns(send(local, '127.0.0.1', proxyPort), () => {}, 3));
    record('forward', 'host -> 127.0.0.1 socat userland proxy', viaSocat, 'MiB/s', `${(viaSocat / localDirect).toFixed(2)}x direct`);
  } finally {
    quiet('kill', [proxy]);
  }
}

/**
 * A boot storm: BOOT thin containers with 2 published ports each, all lxc.start.auto, started at once by
 * lxc-autostart (what the host runs at boot), against as many lxc-copy -s snapshots of the same base. Each
 * set has its own lxc.group, so no other container on the host is started. One run each: it is minutes.
 */
function bootSection(base: string): void {
  const thinGroup = `${tag}thin`;
  const snapGroup = `${tag}snap`;
  const template = join(root, 'grouped.hbs');
  writeFileSync(template, `${output(process.execPath, [CLI, 'template'])}\nlxc.group = ${thinGroup}\n`);
  for (let index = 0; index < BOOT; index++) {
    thin('create', track(`${tag}-t${index}`), '--base', base, '-p', publish(47_000 + 2 * index, 2), '--autostart', '--template', template);
    const snapshot = track(`${tag}-a${index}`);
    sh('lxc-copy', ['-n', base, '-N', snapshot, '-s', '-B', 'overlay']);
    const config = `/var/lib/lxc/${snapshot}/config`;
    writeFileSync(config, `${output('cat', [config])}lxc.start.auto = 1\nlxc.group = ${snapGroup}\n`);
  }
  const storm = (group: string) => {
    const took = sh('lxc-autostart', ['-g', group]);
    const running = output('lxc-ls', ['--running', '-1', '-g', group]).split('\n').filter(Boolean).length;
    if (running !== BOOT) throw new Error(`lxc-autostart -g ${group} left ${BOOT - running} of ${BOOT} stopped`);
    return took;
  };
  const snapshots = record('boot', `lxc-autostart: ${BOOT} lxc-copy -s snapshots to RUNNING`, storm(snapGroup));
  quiet('lxc-autostart', ['-g', snapGroup, '--kill']);
  const thinStorm = record('boot', `lxc-autostart: ${BOOT} thin containers, 2 ports each, to RUNNING`, storm(thinGroup));
  const dnat = output('iptables-save', ['-t', 'nat']).split('\n').filter((line) => line.includes('-j DNAT') && line.includes('thin-lxc')).length;
  if (dnat < BOOT * 2) throw new Error(`only ${dnat} of ${BOOT * 2} DNAT rules after the storm`);
  rows.at(-1)!.ratio = `${(thinStorm / snapshots).toFixed(2)}x the snapshots; ${((thinStorm - snapshots) / BOOT).toFixed(1)} ms more per container`;
  console.log(`${''.padEnd(80)} ${rows.at(-1)!.ratio}`);
  quiet('lxc-autostart', ['-g', thinGroup, '--kill']);
}
