// Idmapped mounts: a directory shown with its owners shifted, so that an unprivileged container's root (a
// high uid on the host) owns what host root owns on disk, without copying or chowning a file.
import { perlCommand, perlProgram } from '../core/commands.js';
import { UserError } from '../core/errors.js';

/** An unprivileged container's map: its uid and gid 0 is `host` on the host, and `range` ids follow. */
export interface IdMap {
  host: number;
  range: number;
}

export const DEFAULT_IDMAP: IdMap = { host: 100000, range: 65536 };

const ID_LIMIT = 2 ** 32 - 1; // (uid_t)-1 is no id

/** HOSTID:RANGE, e.g. 100000:65536. Host id 0 would map the container's root to the host's. */
export function parseIdMap(text: string): IdMap {
  const match = /^(\d{1,10}):(\d{1,10})$/.exec(text);
  const host = match ? Number(match[1]) : NaN;
  const range = match ? Number(match[2]) : NaN;
  if (!match || host < 1 || range < 1 || host + range > ID_LIMIT) {
    throw new UserError(`--idmap ${JSON.stringify(text)} is not HOSTID:RANGE with HOSTID of 1 or more and HOSTID+RANGE below 2^32 (e.g. 100000:65536)`);
  }
  return { host, range };
}

export function formatIdMap(map: IdMap): string {
  return `${map.host}:${map.range}`;
}

/** One line of a user namespace's uid_map and gid_map: ids `inside` .. `inside+count-1` are `outside` .. outside. */
export interface MapLine {
  inside: number;
  outside: number;
  count: number;
}

/** Shows files owned by 0.. on disk as owned by the container's root (map.host..) : for a base's layers. */
export function shiftUp(map: IdMap): MapLine {
  return { inside: 0, outside: map.host, count: map.range };
}

/** The inverse, files owned by map.host.. on disk shown as 0..: for reading a write layer as the base's owners. */
export function shiftDown(map: IdMap): MapLine {
  return { inside: map.host, outside: 0, count: map.range };
}

/**
 * The syscalls, in perl (Node has none of them). The numbers of the new mount API are the same on every
 * architecture: open_tree 428, move_mount 429, mount_setattr 442. A child `unshare --user` holds the user
 * namespace whose map the idmapped mounts use; perl (host root) writes its map and opens it. Exit 2: the kernel
 * cannot idmap that directory (ENOSYS: before 5.12; EINVAL or EPERM: its filesystem cannot be idmapped, such as an
 * overlay); 1: anything else. The one line on stderr says which call failed on what.
 * Arguments: INSIDE OUTSIDE COUNT, then "check" SOURCE... (clones and maps, attaches nothing) or "mount" SOURCE
 * TARGET... (attaches each read-only, idmapped clone on its target). mount_setattr's flags: MOUNT_ATTR_IDMAP
 * 0x100000, RDONLY 0x1, NODEV 0x4 (host root makes the clone: without it, root inside would open the layer's device nodes).
 */
const PROGRAM = String.raw`
use strict; use warnings;
sub fail { my ($code, $what) = @_; print STDERR "$what\n"; exit $code; }
my ($inside, $outside, $count, $mode, @paths) = @ARGV;
pipe(my $r, my $w) or fail(1, "pipe: $!");
my $pid = fork();
defined $pid or fail(1, "fork: $!");
if ($pid == 0) { close $w; open(STDIN, '<&', $r) or exit 1; exec('/usr/bin/unshare', '--user', '--', '/bin/sh', '-c', 'read _'); exit 127; }
close $r;
my $own = readlink('/proc/self/ns/user');
my $ready = 0;
for (1 .. 2000) {
  my $ns = readlink("/proc/$pid/ns/user");
  if (defined $ns && $ns ne $own) { $ready = 1; last; }
  last if waitpid($pid, 1) == $pid;
  select(undef, undef, undef, 0.001);
}
$ready or fail(1, "cannot make a user namespace with /usr/bin/unshare --user (is user.max_user_namespaces 0?)");
for my $file ('uid_map', 'gid_map') {
  open(my $map, '>', "/proc/$pid/$file") or fail(1, "open /proc/$pid/$file: $!");
  syswrite($map, "$inside $outside $count\n") or fail(1, "cannot write $inside $outside $count to a user namespace's $file: $!");
  close($map);
}
open(my $ns, '<', "/proc/$pid/ns/user") or fail(1, "open /proc/$pid/ns/user: $!");
close $w;
waitpid($pid, 0);
my $cannot = sub { my ($call, $path) = @_; my $code = ($!{ENOSYS} || $!{EINVAL} || $!{EPERM} || $!{EOPNOTSUPP}) ? 2 : 1; fail($code, "$call $path: $!"); };
while (@paths) {
  my $source = shift @paths;
  my $fd = syscall(428, -100, $source, 1 | 0x80000);
  $cannot->('open_tree', $source) if $fd < 0;
  my $attr = pack('QQQQ', 0x00100000 | 0x1 | 0x4, 0, 0, fileno($ns));
  my $empty = '';
  syscall(442, $fd, $empty, 0x1000, $attr, length($attr)) == 0 or $cannot->('mount_setattr', $source);
  if ($mode eq 'mount') {
    my $target = shift @paths;
    syscall(429, $fd, $empty, -100, $target, 4) == 0 or fail(1, "move_mount onto $target: $!");
  }
}
`;

function programArgs(line: MapLine, mode: 'check' | 'mount', paths: readonly string[]): string[] {
  return [String(line.inside), String(line.outside), String(line.count), mode, ...paths];
}

function runProgram(line: MapLine, mode: 'check' | 'mount', paths: readonly string[]) {
  return perlProgram(PROGRAM, programArgs(line, mode, paths), 10_000);
}

/**
 * Attaches a read-only clone of each source on its target, shown through `line`, in the caller's mount namespace:
 * for an unprivileged container, the monitor's own (lxc.monitor.unshare), which the host never sees.
 */
export function mountIdmapped(line: MapLine, pairs: readonly { source: string; target: string }[]): void {
  if (pairs.length === 0) return;
  const result = runProgram(line, 'mount', pairs.flatMap(({ source, target }) => [source, target]));
  if (result.exitCode !== 0) throw new UserError(`cannot make an idmapped mount: ${idmapFailure(result.stderr)}`);
}

/**
 * mountIdmapped as a command line, for a mount namespace other than the caller's: commit's private one, which the
 * host never sees and which goes with the copy however it ends. It exits non-zero, saying why on stderr, on failure.
 */
export function idmapMountCommand(line: MapLine, pairs: readonly { source: string; target: string }[]): string[] {
  return perlCommand(PROGRAM, programArgs(line, 'mount', pairs.flatMap(({ source, target }) => [source, target])));
}

/** Why the kernel cannot show these directories through `line` (nothing is mounted to find out), or null. */
export function idmapProblem(line: MapLine, sources: readonly string[]): string | null {
  if (sources.length === 0) return null;
  const result = runProgram(line, 'check', sources);
  return result.exitCode === 0 ? null : idmapFailure(result.stderr);
}

function idmapFailure(stderr: string): string {
  return stderr.trim().split('\n').at(-1) || 'the idmap helper failed without saying why';
}
