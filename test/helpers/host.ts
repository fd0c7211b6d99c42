// What end-to-end tests need from the host: commands, the built CLI, unique names, and cleanup that always runs.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite, type Test } from 'uvu';
import { readState } from '../../src/state/state.js';
import { dnsmasqReadsReservations, HOSTS_DIR } from '../../src/network/dhcp.js';
import { containerTag } from '../../src/forward/rules.js';
import { CLI } from './paths.js';
import { skipUnless } from './skip.js';

export interface Ran {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws on a non-zero exit, so tests assert on what a user would see. */
export async function sh(file: string, args: readonly string[], timeoutMs = 60_000): Promise<Ran> {
  const result = await execa(file, args, { reject: false, timeout: timeoutMs, stdin: 'ignore' });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Runs a command that must succeed. */
export async function must(file: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  const result = await sh(file, args, timeoutMs);
  if (result.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.exitCode}: ${result.stderr || result.stdout}`);
  return result.stdout;
}

export function thinLxc(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Ran> {
  return execa(process.execPath, [CLI, ...args], { reject: false, timeout: 60_000, stdin: 'ignore', ...options }).then(
    (result) => ({ exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) }),
  );
}

/** Names unique to this run, so tests never meet a user's containers or another run's. */
export function uniqueName(label: string): string {
  return `tlt${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}-${label}`;
}

export function temporaryRoot(): string {
  return mkdtempSync('/tmp/thin-lxc-test-');
}

export interface ContainerSuite {
  tests: Test;
  runnable: boolean;
  /** Steps run in after(), newest first, also when a test fails. */
  cleanup: Cleanup;
  /** The suite's own LXC base container, made in before(). */
  base: string;
  /** The suite's own thin-lxc root: a temporary directory, never /containers. */
  root: string;
}

/** How a suite's base is made: busybox takes seconds; Debian (systemd) about a minute the first time. */
export const BUSYBOX = ['-t', 'busybox'];
export const DEBIAN = ['-t', 'debian', '--', '-r', 'bookworm'];

/**
 * A suite of tests with real containers, with its own base, root and cleanup: it runs, or prints why it
 * is skipped. CI sets THIN_LXC_REQUIRE_E2E=1, which turns a skip into a failure.
 */
export async function containerSuite(title: string, baseLabel: string, template: readonly string[] = BUSYBOX): Promise<ContainerSuite> {
  const tests = suite(title);
  const reason =
    (await cannotRunContainers()) ?? (dnsmasqReadsReservations() ? null : "lxc-net's dnsmasq does not read thin-lxc's reservations (run thin-lxc setup)");
  const made: ContainerSuite = { tests, runnable: skipUnless(tests, title, reason === null, reason ?? ''), cleanup: new Cleanup(), base: uniqueName(baseLabel), root: '' };
  if (!made.runnable) return made;
  made.root = temporaryRoot();
  tests.before(async () => {
    made.cleanup.add(() => sh('rm', ['-rf', made.root]));
    made.cleanup.add(() => removeLxcContainer(made.base));
    await must('lxc-create', ['-n', made.base, ...template], 900_000);
  });
  tests.after(() => made.cleanup.run());
  return made;
}

/** Why this machine cannot run containers, or null when it can. */
async function cannotRunContainers(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'not running as root';
  if ((await sh('which', ['lxc-start'])).exitCode !== 0) return 'LXC is not installed (apt-get install lxc)';
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'the kernel has no overlayfs';
  if (!existsSync('/sys/class/net/lxcbr0')) return 'the lxcbr0 bridge is down (USE_LXC_BRIDGE=true /usr/libexec/lxc/lxc-net start)';
  return null;
}

/**
 * Removes an LXC container whatever state it is in, and its thin-lxc address reservation, which a test
 * that failed half way (or whose hooks it removed) may have left; quiet when they are already gone.
 */
export async function removeLxcContainer(name: string): Promise<void> {
  await sh('lxc-stop', ['-n', name, '-k'], 30_000);
  await sh('lxc-destroy', ['-n', name, '-f'], 30_000);
  rmSync(join('/var/lib/lxc', name), { recursive: true, force: true });
  rmSync(join(HOSTS_DIR, name), { force: true });
}

export async function startContainer(name: string, extra: readonly string[] = []): Promise<Ran> {
  const started = await sh('lxc-start', ['-n', name, '-d', ...extra]);
  if (started.exitCode === 0) await must('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '20']);
  return started;
}

export async function attach(name: string, script: string): Promise<string> {
  return (await must('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', script])).trim();
}

/** The host's mounts whose source or target mentions `text`. */
export function hostMountsMentioning(text: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((line) => line.includes(text));
}

/** A digest of every path, type, mode, size, link target and file content below `dir`: equal digests, untouched tree. */
export function treeDigest(dir: string): string {
  const hash = createHash('sha256');
  const walk = (path: string) => {
    const stat = lstatSync(path);
    hash.update(`${path} ${stat.mode} ${stat.size} ${stat.uid}:${stat.gid}\n`);
    if (stat.isSymbolicLink()) hash.update(readlinkSync(path));
    else if (stat.isFile()) hash.update(readFileSync(path));
    else if (stat.isDirectory()) for (const entry of readdirSync(path).sort()) walk(join(path, entry));
  };
  walk(dir);
  return hash.digest('hex');
}

/** Cleanup steps run in reverse order, each on its own, so that one failure does not skip the rest. */
export class Cleanup {
  private readonly steps: (() => unknown)[] = [];
  add(step: () => unknown): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        process.stderr.write(`cleanup step failed: ${(error as Error).message}\n`);
      }
    }
  }
}

/** The iptables tag of a thin container's chains, as its hooks compute it. */
export function tagOf(containerDir: string): string {
  const { veth } = readState(containerDir);
  if (!veth) throw new Error(`${containerDir} has no veth, so no forwarding chains`);
  return containerTag(veth);
}

/**
 * Runs a command as a shell script or a person at a terminal would, with its output through a pipe. Node's
 * own child stdio are sockets, which a hook cannot reopen to tell its caller why it refused (see
 * src/lifecycle/hooks.ts), so an LXC tool's whole story is only seen this way. Output is stdout and stderr merged.
 */
export async function shThroughPipe(file: string, args: readonly string[], timeoutMs = 60_000): Promise<Ran> {
  const result = await sh('sh', ['-c', '{ "$@" 2>&1; echo "exit=$?"; } | cat', 'sh', file, ...args], timeoutMs);
  const output = result.stdout.split('\n');
  const exit = /^exit=(\d+)$/.exec(output.at(-1) ?? '')?.[1];
  return { exitCode: exit === undefined ? -1 : Number(exit), stdout: output.slice(0, -1).join('\n'), stderr: '' };
}
