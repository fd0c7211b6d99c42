// Every system command thin-lxc runs, each behind one named wrapper: what a module asks of the host's
// tools is a function call here, and no other module starts a process.
import { existsSync } from 'node:fs';
import { FALLBACK_PATH, run, startHeld, type CommandResult, type HeldProcess } from './exec.js';
import type { Family } from './validate.js';

// --- LXC ----------------------------------------------------------------------------------------------

export type LxcState = 'STOPPED' | 'STARTING' | 'RUNNING' | 'STOPPING' | 'ABORTING' | 'FREEZING' | 'FROZEN' | 'THAWED' | 'UNKNOWN';

export interface LxcStatus {
  state: LxcState;
  /** The init's pid while it runs: LXC_PID of that start's hooks. */
  pid: string | null;
}

/** lxc-info: one container's state; UNKNOWN when LXC does not know it. */
export function lxcState(name: string, lxcpath: string): LxcState {
  const result = run('lxc-info', ['-P', lxcpath, '-n', name, '-s', '-H'], { allowFailure: true });
  return result.exitCode === 0 ? (result.stdout.trim() as LxcState) : 'UNKNOWN';
}

/** lxc-ls: every container's state and init pid in one call. */
export function lxcStatuses(lxcpath: string): Map<string, LxcStatus> {
  const result = run('lxc-ls', ['-P', lxcpath, '-f', '-F', 'NAME,STATE,PID'], { allowFailure: true });
  const statuses = new Map<string, LxcStatus>();
  for (const line of result.stdout.split('\n').slice(1)) {
    const [name, state, pid] = line.trim().split(/\s+/);
    if (name && state) statuses.set(name, { state: state as LxcState, pid: pid && /^\d+$/.test(pid) ? pid : null });
  }
  return statuses;
}

/** lxc-stop -k: stops a container at once. */
export function lxcStopNow(name: string, lxcpath: string): void {
  run('lxc-stop', ['-P', lxcpath, '-n', name, '-k'], { allowFailure: true });
}

/**
 * How long lxc-cgroup may wait for a container's monitor, which answers only between its hooks: a caller that holds
 * the container's lock (update) must not wait out a hook that waits for that lock (a reboot's post-stop).
 */
export const MONITOR_ANSWER_MS = 5_000;

/**
 * lxc-cgroup: sets one cgroup file of a running container (memory.max, cpu.cfs_quota_us, ...). 'busy' when its
 * monitor did not answer in time (the container is starting, stopping or rebooting); a refusal throws.
 */
export function lxcSetCgroup(name: string, lxcpath: string, file: string, value: string): 'set' | 'busy' {
  try {
    // After --: v1's "no limit" is -1, which would read as an option.
    run('lxc-cgroup', ['-P', lxcpath, '-n', name, '--', file, value], { timeoutMs: MONITOR_ANSWER_MS });
    return 'set';
  } catch (error) {
    if (((error as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') return 'busy';
    throw error;
  }
}

/** lxc-start --version, or null when LXC is not installed. */
export function lxcVersion(): string | null {
  return outputOrNull('lxc-start', ['--version']);
}

/** lxc-net, the service behind lxcbr0 and its dnsmasq, restarted by systemd or by its own script. */
export function restartLxcNetService(scripts: readonly string[]): boolean {
  if (existsSync('/run/systemd/system') && run('systemctl', ['cat', 'lxc-net'], { allowFailure: true }).exitCode === 0) {
    run('systemctl', ['restart', 'lxc-net']);
    return true;
  }
  const script = scripts.find((path) => existsSync(path));
  if (!script) return false;
  run(script, ['stop'], { allowFailure: true });
  run(script, ['start']);
  return true;
}

// --- Filesystems ----------------------------------------------------------------------------------------

/** mount -t TYPE -o OPTIONS SOURCE TARGET; the caller explains a failure. */
export function mount(type: string, options: string, source: string, target: string): CommandResult {
  return run('mount', ['-t', type, '-o', options, source, target], { allowFailure: true });
}

/** umount -l TARGET (detached now, gone once nothing uses it); the caller explains a failure. */
export function unmountLazy(target: string): CommandResult {
  return run('umount', ['-l', target], { allowFailure: true });
}

/**
 * Copies a union's merged view: mounts it read-only at `mountPoint` in a private mount namespace of its own
 * (the host never sees the mount, and it goes with the process whatever happens), and rsyncs it to `dest`
 * keeping owners (numerically), modes, hard links, ACLs, xattrs, device nodes and sparse files.
 * With `progressFd`, rsync's overall progress goes there. `before` are commands run in order in that namespace
 * before the union is mounted (the mounts they make, such as a layer's idmapped clone, go with it too); the
 * namespace's /proc shows its own pid namespace, so that a program there finds its children in it.
 * The copy dies with its caller, even one killed with SIGKILL: unshare gets SIGKILL when its parent dies
 * (setpriv's parent-death signal), its child does when unshare dies (--kill-child), and that child is the
 * first process of a pid namespace of its own, whose end the kernel takes every rsync process with.
 */
export function copyMergedView(type: string, options: string, mountPoint: string, dest: string, progressFd?: number, before: readonly (readonly string[])[] = []): void {
  // After the mount's arguments: how many commands, then each as its length and its words; a subshell keeps only
  // one command's words ("$@" has no slices in sh) and runs it.
  const script =
    't=$1 o=$2 m=$3 k=$4 && shift 4 && ' +
    'while [ "$k" -gt 0 ]; do n=$1 && shift && (c=0; for a; do c=$((c + 1)); [ "$c" -le "$n" ] && set -- "$@" "$a"; done; shift "$c"; exec "$@") && shift "$n" && k=$((k - 1)) || exit 1; done && ' +
    'mount -t "$t" -o "$o" thin-lxc "$m" && exec rsync "$@"';
  const rsync = ['-aHAXS', '--numeric-ids', ...(progressFd === undefined ? [] : ['--info=progress2']), `${mountPoint}/`, `${dest}/`];
  const unshare = ['unshare', '--mount', '--propagation', 'private', '--pid', '--mount-proc', '--kill-child', '--'];
  run('setpriv', ['--pdeathsig', 'KILL', '--', ...unshare, 'sh', '-c', script, 'sh', type, options, mountPoint, String(before.length), ...before.flatMap((command) => [String(command.length), ...command]), ...rsync], {
    timeoutMs: 6 * 3600_000,
    ...(progressFd === undefined ? {} : { stdoutTo: progressFd }),
  });
}

/**
 * Mounts a filesystem in a private mount namespace of a process of its own and holds it there until release():
 * the host never sees it, and its files are read through /proc/PID/root. It dies with its caller (setpriv's
 * parent-death signal), and its namespace, with the mount (and a loop device's autoclear), with it.
 */
export function holdMount(type: string, options: string, source: string, mountPoint: string): Promise<HeldProcess> {
  // Unmounted before it exits: the filesystem (and a loop device's autoclear) is done with before release() returns.
  // Not unmounted after a failed mount: the mount's own reason stays the last line of what it said.
  const script = 'mount -t "$1" -o "$2" "$3" "$4" || exit; echo mounted; read _; umount "$4"';
  return startHeld('setpriv', ['--pdeathsig', 'KILL', '--', ...HOLDER, 'sh', '-c', script, 'sh', type, options, source, mountPoint], 'mounted');
}

/**
 * The same for a filesystem that is mounted already (a running container's image, on its loop device): mounted
 * again it is the same filesystem, not a second one over the same blocks, and its mount point is then made
 * read-only. Mounted read-only at once, the kernel would refuse it (EBUSY), as it refuses a second device on it.
 */
export function holdLiveMount(type: string, device: string, mountPoint: string): Promise<HeldProcess> {
  const script = 'mount -t "$1" "$2" "$3" && mount -o remount,bind,ro "$3" && echo mounted && read _; umount "$3"';
  return startHeld('setpriv', ['--pdeathsig', 'KILL', '--', ...HOLDER, 'sh', '-c', script, 'sh', type, device, mountPoint], 'mounted');
}

const HOLDER = ['unshare', '--mount', '--propagation', 'private', '--'];

/**
 * mkfs.ext4 -d: an ext4 filesystem in the (sparse) file `image`, filled from the directory `from` (owners, modes,
 * xattrs kept), made without mounting anything. lazy_journal_init: the journal is not zeroed, so the file stays
 * sparse (a file's holes read as zeros already); no blocks are reserved for root, the whole size is the limit.
 */
export function makeExt4Image(image: string, from: string): CommandResult {
  return run('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'lazy_journal_init=1', '-d', from, image], { allowFailure: true });
}

/**
 * e2fsck -f -p then resize2fs: grows an unmounted ext4 image to fill its file (resize2fs wants a checked filesystem).
 * Each is given `lockFd`, the container's lock (a flock, the open file description's): were the caller killed, the
 * tool would go on writing the image, and so holds the lock until it is done, so that no start mounts it meanwhile.
 * Neither is killed with its caller (an interrupted resize2fs is damage itself), nor after run()'s usual 2 minutes,
 * nor by a Ctrl-C meant for the caller: each runs in a session of its own (setsid), outside the caller's process
 * group, which the terminal signals (--wait: setsid keeps the tool's exit status where it has to fork).
 */
export function growExt4Image(image: string, lockFd: number): CommandResult & { step: 'check' | 'resize' } {
  const check = runOutliving(['e2fsck', '-f', '-p', image], lockFd);
  // 1: errors corrected, which is fine; 2 and up: reboot needed, uncorrected or failed.
  if (check.exitCode > 1) return { ...check, step: 'check' };
  return { ...runOutliving(['resize2fs', image], lockFd), step: 'resize' };
}

/** e2fsck -p: replays a stopped image's journal (and checks it) where a crash left one to replay; `lockFd` and the session as for growExt4Image. */
export function replayExt4Journal(image: string, lockFd: number): CommandResult {
  return runOutliving(['e2fsck', '-p', image], lockFd);
}

/** e2fsck -f -y: what resize2fs asks for after it stopped half way; `lockFd` and the session as for growExt4Image. */
export function repairExt4Image(image: string, lockFd: number): CommandResult {
  return runOutliving(['e2fsck', '-f', '-y', image], lockFd);
}

/**
 * Runs a tool that must outlive its caller (see growExt4Image): given `lockFd`, with no 2-minute timeout, in a session
 * of its own, and deaf to SIGPIPE, which its next line to the caller's closed pipe would otherwise deliver (e2fsck
 * writes as it repairs): a write then just fails.
 */
function runOutliving(argv: readonly string[], lockFd: number): CommandResult {
  return run('sh', ['-c', `trap '' PIPE; exec setsid --wait "$@"`, 'sh', ...argv], { allowFailure: true, fds: [lockFd], timeoutMs: 6 * 3600_000 });
}

/** modprobe loop: where the loop driver is a module not loaded yet (right after a boot), the first mount needs it. */
export function loadLoopDriver(): void {
  run('modprobe', ['loop'], { allowFailure: true });
}

/** chattr -p ID +P: puts paths (with -R, what is below them too) in a quota project, which what is made inside inherits. */
export function setQuotaProject(paths: readonly string[], project: number, recursive = false): CommandResult {
  return run('chattr', [...(recursive ? ['-R'] : []), '-p', String(project), '+P', '--', ...paths], { allowFailure: true });
}

/** setquota -P: a project's hard limits, blocks in KiB and inodes, on the filesystem mounted at `mountPoint` (0: no limit). */
export function setProjectLimit(mountPoint: string, project: number, limit: { hardKiB: number; hardInodes: number }): CommandResult {
  return run('setquota', ['-P', String(project), '0', String(limit.hardKiB), '0', String(limit.hardInodes), mountPoint], { allowFailure: true });
}

/** repquota -P -n -v: every project with use or limits on a filesystem, by number; null when it has no project quota on. */
export function projectQuotaReport(mountPoint: string): string | null {
  const result = run('repquota', ['-P', '-n', '-p', '-v', mountPoint], { allowFailure: true });
  return result.exitCode === 0 ? result.stdout : null;
}

/** du -s: bytes used under each path, in one call. */
export function diskUsage(paths: readonly string[]): Map<string, number> {
  const sizes = new Map<string, number>();
  if (paths.length === 0) return sizes;
  const result = run('du', ['-s', '-B1', '--', ...paths], { allowFailure: true });
  for (const line of result.stdout.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) sizes.set(line.slice(tab + 1), Number(line.slice(0, tab)));
  }
  return sizes;
}

/** getfattr: the directories below `dir` that overlayfs marked opaque (Node has no getxattr). */
export function opaqueDirectories(dir: string): Set<string> {
  const result = run('getfattr', ['--absolute-names', '-R', '-h', '-m', '^trusted.overlay.opaque$', '-d', dir], { allowFailure: true });
  const opaque = new Set<string>();
  let file = '';
  for (const line of result.stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice('# file: '.length);
    else if (line.trim() === 'trusted.overlay.opaque="y"') opaque.add(file);
  }
  return opaque;
}

/**
 * flock(1) on an open file of ours, passed as its descriptor 3: the lock belongs to the open file
 * description, which the caller keeps after flock exits. Node has no flock(2).
 */
export function flockWait(fd: number, seconds: string, timedOutExitCode: number): CommandResult {
  return run('flock', ['--exclusive', '--conflict-exit-code', String(timedOutExitCode), '--wait', seconds, '3'], { allowFailure: true, fds: [fd] });
}

/** Where ofdLockWait's struct flock (64-bit Linux's layout) fits. */
const OFD_ARCHES: readonly string[] = ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64'];

/** perl: fcntl F_OFD_SETLKW (38) of a write lock on the whole file on `handle`, its struct flock packed as 64-bit Linux lays it out, in a variable (fcntl writes it back). */
function ofdWriteLock(handle: string): string {
  return `fcntl(${handle}, 38, my $lock = pack('s s x4 q q i x4', 1, 0, 0, 0, 0))`;
}

/**
 * What LXC holds while it changes a container's files (its lxc_snapshots among them): an open file description lock
 * (fcntl F_OFD_SETLKW, write, whole file), taken by perl on our open file passed as descriptor 3. Like flock's, it
 * belongs to the open file description, which the caller keeps after perl exits; Node has no fcntl. perl is part of
 * every Debian and Ubuntu system (perl-base). The struct flock is packed as 64-bit Linux lays it out: null elsewhere.
 */
export function ofdLockWait(fd: number, seconds: number, timedOutExitCode: number): CommandResult | null {
  if (!OFD_ARCHES.includes(process.arch)) return null;
  const script =
    `$SIG{ALRM} = sub { exit ${timedOutExitCode} }; open(my $fh, '+<&=', 3) or exit 2; ` +
    `alarm(${Math.max(1, Math.ceil(seconds))}); ${ofdWriteLock('$fh')} or exit($!{EINTR} ? ${timedOutExitCode} : 1);`;
  // Root's perl by absolute path with only PATH: the caller's PERL5OPT, PERL5LIB (or a perl earlier on PATH) would
  // load their code into this root process, and hooks (ephemeral teardown) inherit lxc-start's environment.
  return run('/usr/bin/perl', ['-e', script], { allowFailure: true, fds: [fd], cleanEnv: true });
}

/** What flockAndOfdLockWait exits with when the OFD lock failed other than by timing out: its own, told from flock's 1. */
export const OFD_LOCK_FAILED = 3;

/**
 * flock(2) on descriptor 3, then the OFD lock above on descriptor 4, in one perl process: a create takes its host-wide
 * lock and LXC's lock on its base together, one process fewer than flockWait and ofdLockWait one after the other.
 * Each wait is bounded by `seconds`; exit `timedOutExitCode` when the first timed out, one more when the second did,
 * and OFD_LOCK_FAILED, with the reason on stderr, when the second failed otherwise. null where ofdLockWait's struct
 * flock does not fit.
 */
export function flockAndOfdLockWait(flockFd: number, ofdFd: number, seconds: number, timedOutExitCode: number): CommandResult | null {
  if (!OFD_ARCHES.includes(process.arch)) return null;
  const wait = Math.max(1, Math.ceil(seconds));
  // LOCK_EX is 2 and EINTR 4: numbers, so that perl loads no module (Fcntl, Errno). Woken each second to see whether
  // its caller still lives: a create killed while perl waits for LXC's lock must not leave perl holding 'create'.
  const script =
    `my ($code, $left, $parent) = (${timedOutExitCode}, ${wait}, getppid()); ` +
    `$SIG{ALRM} = sub { exit $code if --$left <= 0 || getppid() != $parent; alarm(1) }; ` +
    `open(my $first, '+<&=', 3) or exit 2; open(my $second, '+<&=', 4) or exit 2; ` +
    `alarm(1); until (flock($first, 2)) { exit 1 if $! != 4 } ` +
    `($code, $left) = (${timedOutExitCode + 1}, ${wait}); alarm(1); ` +
    `until (${ofdWriteLock('$second')}) { $! == 4 or (print(STDERR "$!\\n"), exit ${OFD_LOCK_FAILED}) }`;
  return run('/usr/bin/perl', ['-e', script], { allowFailure: true, fds: [flockFd, ofdFd], cleanEnv: true });
}

/**
 * A perl program of thin-lxc's own, by root's perl with only PATH (as for the OFD lock above): how thin-lxc makes
 * the syscalls Node has no binding for. perl-base is on every Debian and Ubuntu system; its builtin syscall()
 * passes strings as pointers.
 */
export function perlProgram(script: string, args: readonly string[], timeoutMs: number): CommandResult {
  return run('/usr/bin/perl', ['-e', script, '--', ...args], { allowFailure: true, cleanEnv: true, timeoutMs });
}

/** The same, as a command line for a caller that runs it elsewhere (copyMergedView's `before`), also with only PATH. */
export function perlCommand(script: string, args: readonly string[]): string[] {
  return ['/usr/bin/env', '-i', `PATH=${FALLBACK_PATH}`, '/usr/bin/perl', '-e', script, '--', ...args];
}

// --- Network ------------------------------------------------------------------------------------------

/** ip neigh flush: forgets what the kernel knows of an address's link-layer address (permanent entries stay). */
export function ipNeighbourFlush(address: string, device: string): void {
  run('ip', ['neigh', 'flush', 'to', address, 'dev', device], { allowFailure: true });
}

/** The tools of each family: iptables for IPv4, ip6tables for IPv6. */
const IPTABLES: Record<Family, string> = { 4: 'iptables', 6: 'ip6tables' };

/** ip -o link in a running container's network namespace (by its init's pid). */
export function containerLinks(pid: string): string {
  return run('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-o', 'link', 'show']).stdout;
}

/** ip token set: the interface identifier SLAAC uses on a container's interface. */
export function setIPv6Token(pid: string, device: string, token: string): void {
  run('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', 'token', 'set', token, 'dev', device]);
}

/** iptables-save (ip6tables-save): every table, as iptables-restore reads it. */
export function iptablesSave(family: Family = 4): string {
  return run(`${IPTABLES[family]}-save`, []).stdout;
}

/** iptables-restore --noflush: only the chains the script names change; -w waits for other iptables users. */
export function iptablesRestore(script: string, family: Family = 4): void {
  run(`${IPTABLES[family]}-restore`, ['-w', '--noflush'], { input: script });
}

/** The same, reporting a script iptables refused instead of throwing: for callers with another way. */
export function tryIptablesRestore(script: string, family: Family = 4): boolean {
  return run(`${IPTABLES[family]}-restore`, ['-w', '--noflush'], { input: script, allowFailure: true }).exitCode === 0;
}

/** iptables --version, or null when it is not installed; and whether it can read the nat table. */
export function iptablesVersion(): { version: string; natReadable: boolean } | null {
  const version = outputOrNull('iptables', ['--version']);
  return version === null ? null : { version, natReadable: outputOrNull('iptables-save', ['-t', 'nat']) !== null };
}

function outputOrNull(file: string, args: string[]): string | null {
  try {
    const result = run(file, args, { allowFailure: true });
    return result.exitCode === 0 ? result.stdout.trim() : null;
  } catch {
    return null;
  }
}
