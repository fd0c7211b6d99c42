// Starting processes, the one way thin-lxc does it (argument arrays, never shell strings), and asking
// whether one still runs. Only src/core/commands.ts calls run(): each system command has its wrapper there.
// node:child_process rather than execa: execa's import alone costs more than Node's own startup, and hooks
// run at every container start.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { CommandError, UserError } from './errors.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface RunOptions {
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  input?: string;
  timeoutMs?: number;
  /** Open files the command gets as its descriptors 3, 4, ... */
  fds?: readonly number[];
  /** Let the command's stdout through to this descriptor (a progress display) instead of capturing it. */
  stdoutTo?: number;
  /** Run with only PATH (the sbin-extended fallback), not the caller's environment. */
  cleanEnv?: boolean;
}

/** LXC runs hooks with whatever environment lxc-start had; make sure the sbin folders are searched. */
export const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Which Debian package brings a command, for the "how to fix it" half of a message. */
const PACKAGE_OF: Record<string, string> = {
  mount: 'mount',
  umount: 'mount',
  iptables: 'iptables',
  'iptables-save': 'iptables',
  'iptables-restore': 'iptables',
  'ip6tables-save': 'iptables',
  'ip6tables-restore': 'iptables',
  ip: 'iproute2',
  getfattr: 'attr',
  du: 'coreutils',
  systemctl: 'systemd',
  flock: 'util-linux',
  '/usr/bin/perl': 'perl-base',
  unshare: 'util-linux',
  setpriv: 'util-linux',
  setsid: 'util-linux',
  nsenter: 'util-linux',
  rsync: 'rsync',
  'lxc-cgroup': 'lxc',
  dnsmasq: 'dnsmasq-base',
  'mkfs.ext4': 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  resize2fs: 'e2fsprogs',
  chattr: 'e2fsprogs',
  setquota: 'quota',
  repquota: 'quota',
  modprobe: 'kmod',
};

let traceCommands = false;

/** With --debug, every command is echoed to stderr before it runs. */
export function setCommandTrace(on: boolean): void {
  traceCommands = on;
}

export function run(file: string, args: readonly string[], options: RunOptions = {}): CommandResult {
  if (traceCommands) process.stderr.write(`+ ${[file, ...args].join(' ')}\n`);
  const env = options.cleanEnv ? { PATH: FALLBACK_PATH } : { ...process.env, PATH: withSbin(process.env.PATH) };
  const result = spawnSync(file, args, {
    encoding: 'utf8',
    env,
    input: options.input,
    timeout: options.timeoutMs ?? 120_000,
    stdio: ['pipe', options.stdoutTo ?? 'pipe', 'pipe', ...(options.fds ?? [])],
  });
  if (result.error) {
    const code = (result.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new UserError(`${file} is not installed: install it with apt-get install ${packageOf(file)}`);
    }
    throw new CommandError([file, ...args], null, result.error.message, { cause: result.error });
  }
  const output = { stdout: result.stdout ?? '', stderr: result.stderr, exitCode: result.status ?? -1 };
  if (output.exitCode !== 0 && !options.allowFailure) {
    throw new CommandError([file, ...args], result.status, result.stderr || result.stdout);
  }
  return output;
}

/** A process kept running while its caller works (a mount held in a namespace of its own), ended by release(). */
export interface HeldProcess {
  pid: number;
  /** Closes its stdin, which tells it to finish, and waits for it to exit. */
  release(): Promise<void>;
}

/**
 * Starts a process that prints `readyLine` once it is ready and then waits for its stdin to close; resolves
 * once the line came, rejects (with its stderr's last line) when it exits before that.
 */
export function startHeld(file: string, args: readonly string[], readyLine: string): Promise<HeldProcess> {
  if (traceCommands) process.stderr.write(`+ ${[file, ...args].join(' ')}\n`);
  const child = spawn(file, args, { env: { ...process.env, PATH: withSbin(process.env.PATH) }, stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.split('\n').includes(readyLine)) {
        resolve({
          pid: child.pid!,
          release: async () => {
            child.stdin.end();
            await exited;
          },
        });
      }
    });
    child.once('error', (error) => {
      const code = (error as NodeJS.ErrnoException).code;
      reject(code === 'ENOENT' ? new UserError(`${file} is not installed: install it with apt-get install ${packageOf(file)}`) : error);
    });
    child.once('close', (status) => reject(new CommandError([file, ...args], status, stderr || stdout)));
  });
}

/** Which of these commands are not on the PATH (with the sbin folders), each as "apt-get install PACKAGE". */
export function missingPackages(commands: readonly string[]): string[] {
  const dirs = withSbin(process.env.PATH).split(':');
  const found = (command: string) => dirs.some((dir) => {
    try {
      accessSync(`${dir}/${command}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return [...new Set(commands.filter((command) => !found(command)).map(packageOf))];
}

function packageOf(command: string): string {
  return PACKAGE_OF[command] ?? (command.startsWith('lxc-') ? 'lxc' : command);
}

function withSbin(path: string | undefined): string {
  if (!path) return FALLBACK_PATH;
  const have = new Set(path.split(':'));
  const missing = FALLBACK_PATH.split(':').filter((dir) => !have.has(dir));
  return [path, ...missing].join(':');
}

/** False for anything that is not a positive pid: kill(0) would signal our own process group. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
