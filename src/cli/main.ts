// The thin-lxc command: wires commander to the commands and reports errors once, as one line.
import { Command, CommanderError, Option } from 'commander';
import { resolveSettings, type Settings } from '../commands/settings.js';
import { UserError, formatError, oneLine } from '../core/errors.js';
import { setCommandTrace } from '../core/exec.js';
import { thinLxcVersion } from '../lxc/install.js';
import { translateLegacyArgs } from './legacy-argv.js';

interface GlobalOptions {
  root?: string;
  lxcpath?: string;
  debug?: boolean;
}

const EXAMPLES = `
Examples:
  thin-lxc create web1 --base base1              # a thin container of LXC container base1
  lxc-start -n web1 -d && lxc-attach -n web1     # then plain LXC
  thin-lxc list
  thin-lxc destroy web1 --force
  thin-lxc -a create -b /var/lib/lxc/base1 -id web1 -n web1 -ip 10.0.3.67 -p 3000:3010   # the original's form

Containers live in /containers/<id> unless --root, THIN_LXC_ROOT or /etc/thin-lxc/thin-lxc.ini (root = DIR) say otherwise.`;

const writeOut = (text: string) => void process.stdout.write(text);
const writeErr = (text: string) => void process.stderr.write(text);

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const args = translateLegacyArgs(argv);
  const debug = args.includes('--debug');
  setCommandTrace(debug);
  const program = makeProgram(env, cwd, debug);
  try {
    await program.parseAsync([...args], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof DoctorFound) {
      writeErr(`thin-lxc: doctor found ${error.count} problem(s): run the commands shown above\n`);
      return 1;
    }
    writeErr(`${formatError(error, debug)}\n`);
    return error instanceof UserError ? 2 : 1;
  }
}

/** Every command and option, wired to its work; the man page and the completion are checked against it. */
export function makeProgram(env: NodeJS.ProcessEnv, cwd: string, debug: boolean): Command {
  const out = (text: string) => writeOut(text.endsWith('\n') ? text : `${text}\n`);
  // Read once per run: the ephemeral sweep before a command and the command itself both need them.
  let settings: Settings | undefined;
  const settingsOf = (command: Command): Settings => {
    const global = command.optsWithGlobals<GlobalOptions>();
    return (settings ??= resolveSettings({ flags: { root: global.root, lxcpath: global.lxcpath }, env, cwd }));
  };

  const program = new Command('thin-lxc')
    .description('Instant thin LXC containers: a private write layer over an existing container, run with plain LXC.')
    .version(thinLxcVersion(), '-V, --version')
    .option('--root <dir>', 'where thin containers live (default /containers)')
    .option('--lxcpath <dir>', "LXC's container path to register them in (default: LXC's own)")
    .option('--debug', 'show stack traces and the system commands run')
    .addHelpText('after', EXAMPLES)
    .exitOverride()
    .configureOutput({
      writeOut,
      writeErr,
      outputError: (text, write) => write(`thin-lxc: ${oneLine(text.trim().replace(/^error: /, ''))} (run thin-lxc --help for usage)\n`),
    });

  program
    .command('create')
    .description('make a thin container from a base container, in milliseconds')
    .argument('[name]', 'container name, also its hostname (or -n NAME)')
    .option('-n, --name <name>', 'container name (the original form)')
    .requiredOption('-b, --base <base>', "the base: an LXC container's name, or its directory")
    .option('--id <id>', 'directory name under the root (default: the name)')
    .option('--ip <address>', 'static IPv4 address on the LXC bridge')
    .option('--ip6 <address>', 'static IPv6 address on a bridge with IPv6 (default: one made from the IPv4 address)')
    .option('-p, --publish <spec...>', 'forward host ports, on IPv4 and IPv6: [HOST_IP:]HOST_PORT[-END]:PORT[-END][/tcp|/udp]; HOST_IP 0.0.0.0 or [::] for one family')
    .option('-m, --mount <spec...>', 'bind-mount host paths: HOST:CONTAINER[:ro], comma-separated')
    .addOption(new Option('--fs <fs>', 'union filesystem').choices(['overlay', 'aufs']).default('overlay'))
    .option('--autostart', 'start it with the host (lxc.start.auto = 1, run by lxc-autostart at boot)')
    .option('--template <file>', 'render the LXC config from this Handlebars template (see thin-lxc template)')
    .option('--ephemeral', 'destroy it, with its registration and address, once it stops (like docker run --rm)')
    .option('--tmpfs [size]', 'keep the write layer in memory, empty at every start: --tmpfs or --tmpfs=512M (default 50% of RAM)')
    .option('--memory <size>', 'memory limit, e.g. 512M or 2G')
    .option('--cpus <n>', 'CPU limit in CPUs, e.g. 1.5')
    .option('--disk <size>', 'limit the write layer on disk, e.g. 2G (a project quota where the filesystem has them, else a disk image)')
    .option('--unprivileged', 'run it in a user namespace: root inside is uid 100000 on the host (Linux 5.19+, base on ext4/xfs/btrfs)')
    .option('--idmap <hostid:range>', 'the user namespace\'s map for --unprivileged (default 100000:65536)')
    .option('--privileged', 'privileged even where the settings make --unprivileged the default')
    .option('--force', 'publish host ports even where a host process listens on them')
    .option('--replace', 'if a container of this name exists with another spec, destroy it and create this one')
    .option('--dry-run', 'print the config, mounts and rules it would make, and change nothing (check mode)')
    .option('--json', 'report as JSON, with changed: true|false')
    .action(async (positional: string | undefined, options: Record<string, string | string[] | boolean | undefined>, command: Command) => {
      requireRoot();
      const name = positional ?? (options.name as string | undefined);
      if (name === undefined) throw new UserError('create needs a name: thin-lxc create NAME --base BASE');
      const started = performance.now();
      const { createContainer, previewCreate, describePlan, describeReplace } = await import('../commands/create.js');
      const { summaryOf } = await import('../commands/list.js');
      const request = { ...options, name } as Parameters<typeof createContainer>[0];
      const settings = settingsOf(command);
      if (options.dryRun) {
        const { changed, action, state, plan, replacing } = previewCreate(request, settings, cwd);
        if (options.json) return out(JSON.stringify({ changed, action, ...summaryOf(state), ...(plan ? { config: plan.config } : {}) }, null, 2));
        if (plan && replacing) return out(describeReplace(replacing, plan));
        if (plan) return out(describePlan(plan));
        return out(`Thin container ${name} is unchanged: it has this spec.`);
      }
      const outcome = await createContainer(request, settings, cwd);
      if (outcome.changed) for (const warning of outcome.plan.warnings) writeErr(`thin-lxc: warning: ${oneLine(warning)}\n`);
      if (options.json) return out(JSON.stringify({ changed: outcome.changed, action: outcome.action, ...summaryOf(outcome.state) }, null, 2));
      const { state } = outcome;
      if (!outcome.changed) return out(`Thin container ${state.name} is unchanged: it exists with this spec.`);
      const ms = Math.round(performance.now() - started);
      out(
        `${outcome.action === 'replaced' ? 'Replaced' : 'Created'} thin container ${state.name} (id ${state.id}) from ${state.baseName} in ${ms} ms` +
          (state.ip ? `, address ${state.ip}` : '') +
          (state.ip6 ? ` and ${state.ip6}` : '') +
          (state.publish.length > 0 ? `, ports ${state.publish.join(', ')}` : '') +
          (state.ephemeral ? ', ephemeral (destroyed when it stops)' : '') +
          '.\n' +
          `Start it with: lxc-start -n ${state.name} -d`,
      );
    });

  program
    .command('update')
    .description('change a thin container: ports (at once, even running), bind mounts, autostart and limits (from its next start)')
    .argument('<id-or-name>')
    .option('-p, --publish <spec...>', 'publish more host ports: [HOST_IP:]HOST_PORT[-END]:PORT[-END][/tcp|/udp]')
    .option('--unpublish <spec...>', 'stop publishing these: a published spec or its host port (8080, 53/udp)')
    .option('-m, --mount <spec...>', 'bind-mount more host paths: HOST:CONTAINER[:ro]')
    .option('--unmount <path...>', 'remove these bind mounts: the container path, or HOST:CONTAINER')
    .option('--autostart', 'start it with the host')
    .option('--no-autostart', 'do not start it with the host')
    .option('--memory <size>', 'memory limit, e.g. 512M, or none')
    .option('--cpus <n>', 'CPU limit in CPUs, e.g. 1.5, or none')
    .option('--disk <size>', 'write layer limit on disk, e.g. 2G, or none (quota: any time; image: grows while stopped)')
    .option('--force', 'publish host ports even where a host process listens on them')
    .option('--dry-run', 'say what would change, and change nothing (check mode)')
    .option('--json', 'report as JSON, with changed: true|false')
    .action(async (target: string, options: Record<string, string[] | string | boolean | undefined>, command: Command) => {
      requireRoot();
      const { update, formatUpdate } = await import('../commands/update.js');
      const { summaryOf } = await import('../commands/list.js');
      const settings = settingsOf(command);
      // commander sets autostart to true by default once --no-autostart is declared: only an explicit flag switches it.
      const autostartSource = command.getOptionValueSource('autostart');
      const request = { ...options, autostart: autostartSource === 'cli' ? (options.autostart as boolean) : undefined } as Parameters<typeof update>[1];
      const plan = update(target, request, settings, cwd, options.dryRun === true);
      if (plan.changed) for (const warning of plan.warnings) writeErr(`thin-lxc: warning: ${oneLine(warning)}\n`);
      if (options.json) {
        return out(JSON.stringify({ changed: plan.changed, action: plan.changed ? (options.dryRun ? 'update' : 'updated') : 'unchanged', ...summaryOf(plan.after), notes: plan.notes }, null, 2));
      }
      out(formatUpdate(plan, options.dryRun === true));
    });

  program
    .command('destroy')
    .description('remove a thin container (it must be stopped, or use --force); its base is untouched')
    .argument('<id-or-name>')
    .option('-f, --force', 'stop it first if it is running; a container that is not there is no error')
    .option('--dry-run', 'say what would be destroyed, and change nothing (check mode)')
    .option('--json', 'report as JSON, with changed: true|false')
    .action(async (target: string, options: { force?: boolean; dryRun?: boolean; json?: boolean }, command: Command) => {
      requireRoot();
      const { destroy } = await import('../commands/destroy.js');
      const result = destroy(target, options, settingsOf(command));
      out(options.json ? JSON.stringify({ changed: result.changed, action: result.changed ? (options.dryRun ? 'destroy' : 'destroyed') : 'absent', name: result.name }, null, 2) : result.message);
    });

  program
    .command('list')
    .alias('ls')
    .description('list thin containers, their state and their bases')
    .option('--json', 'machine-readable output')
    .action(async (options: { json?: boolean }, command: Command) => {
      requireRoot();
      const { listViews, formatList } = await import('../commands/list.js');
      const settings = settingsOf(command);
      const views = listViews(settings);
      out(options.json ? JSON.stringify(views, null, 2) : formatList(views, settings.root));
    });

  program
    .command('show')
    .description('show one thin container')
    .argument('<id-or-name>')
    .option('--json', 'machine-readable output')
    .action(async (target: string, options: { json?: boolean }, command: Command) => {
      requireRoot();
      const { showView, formatShow } = await import('../commands/list.js');
      const v = showView(target, settingsOf(command));
      out(options.json ? JSON.stringify(v, null, 2) : formatShow(v));
    });

  program
    .command('diff')
    .description('files the container added (A), changed (C) or deleted (D) compared with its base')
    .argument('<id-or-name>')
    .option('--json', 'machine-readable output')
    .action(async (target: string, options: { json?: boolean }, command: Command) => {
      requireRoot();
      const { diff } = await import('../commands/diff.js');
      const { formatChanges } = await import('../container/layers.js');
      const changes = await diff(target, settingsOf(command));
      out(options.json ? JSON.stringify(changes, null, 2) : formatChanges(changes) || 'No changes.');
    });

  program
    .command('commit')
    .description('copy a stopped thin container, as it sees its files, into a standalone LXC container (a golden image)')
    .argument('<id-or-name>')
    .argument('<new-base>', 'name of the new LXC container')
    .option('--dry-run', 'print what it would copy and the config it would write, and change nothing')
    .option('--json', 'machine-readable output')
    .action(async (target: string, newBase: string, options: { json?: boolean; dryRun?: boolean }, command: Command) => {
      requireRoot();
      const { planCommit, applyCommit, describeCommit } = await import('../commands/commit.js');
      const plan = planCommit(target, newBase, settingsOf(command));
      if (options.dryRun) {
        return out(options.json ? JSON.stringify({ changed: true, action: 'commit', name: plan.name, dir: plan.dir, layers: plan.layers, config: plan.config }, null, 2) : describeCommit(plan));
      }
      const result = applyCommit(plan, { progress: process.stderr.isTTY === true && !options.json });
      if (options.json) return out(JSON.stringify({ changed: true, action: 'committed', ...result }, null, 2));
      out(`Committed ${target} to LXC container ${result.name} (${result.dir}) in ${result.ms} ms.\nBoot it with lxc-start -n ${result.name}, or stack on it: thin-lxc create NAME --base ${result.name}`);
    });

  program
    .command('template')
    .description('print the default config template, to copy, edit and pass to create --template')
    .action(async () => {
      const { readTemplate } = await import('../lxc/render.js');
      out(readTemplate());
    });

  program
    .command('doctor')
    .description('check the host and print, for each problem, the command that fixes it')
    .action(async (_options: unknown, command: Command) => {
      const { doctor, formatChecks } = await import('../commands/doctor.js');
      const checks = doctor(settingsOf(command));
      out(formatChecks(checks));
      if (checks.some((c) => !c.ok)) throw new DoctorFound(checks.filter((c) => !c.ok).length);
    });

  program
    .command('setup')
    .description("prepare the host once: make lxc-net's dnsmasq honour thin containers' static addresses and names (safe to repeat)")
    .option('--ipv6 [prefix]', "give lxc-net's bridge IPv6: a /64 like fd42:7a3b:1c00::/64, or a ULA prefix of the host's own")
    .action(async (options: { ipv6?: string | boolean }) => {
      requireRoot();
      const { setup } = await import('../commands/setup.js');
      out(setup(options));
    });

  program
    .command('refresh')
    .description('point thin containers\' hooks at this installation, after node or thin-lxc moved or was upgraded (safe to repeat)')
    .argument('[names...]', 'thin containers to refresh (default: all thin-lxc knows of)')
    .option('--dry-run', 'say which would change, and change nothing')
    .action(async (names: string[], options: { dryRun?: boolean }, command: Command) => {
      requireRoot();
      const { refresh, formatRefreshed } = await import('../commands/refresh.js');
      out(formatRefreshed(refresh(names, settingsOf(command), options), options.dryRun === true));
    });

  program
    .command('reload')
    .description('re-apply what running thin containers need on the host (safe to repeat)')
    .action(async (_options: unknown, command: Command) => {
      requireRoot();
      const { reload } = await import('../commands/reload.js');
      out(reload(settingsOf(command)));
    });

  // Asked by the bash completion (completion/thin-lxc.bash) at each Tab: never fails, never needs root.
  program
    .command('__complete', { hidden: true })
    .argument('[words...]', "the line's words after thin-lxc, up to the cursor")
    .allowUnknownOption()
    .action(async (words: string[]) => {
      const { completionRequest, candidates } = await import('./completion.js');
      const { listContainers } = await import('../container/containers.js');
      const { lxcContainerNames } = await import('../lxc/lxcpath.js');
      const request = completionRequest(program, words.length > 0 ? words : ['']);
      if (request.wanted.kind === 'files') return out(`files\n${request.current}`);
      const names = () => {
        try {
          const settings = resolveSettings({ flags: { root: request.root, lxcpath: request.lxcpath }, env, cwd });
          return request.wanted.kind === 'bases'
            ? lxcContainerNames(settings.lxcpath)
            : listContainers(settings.root).flatMap(({ state }) => [state.name, state.id]);
        } catch {
          return [];
        }
      };
      writeOut(['words', ...candidates(request, names)].join('\n') + '\n');
    });

  // A crashed ephemeral container (its post-stop hook never ran) is gone once the next command has run.
  program.hook('preAction', async (_program, action) => {
    if (process.getuid?.() !== 0 || !SWEEPS_EPHEMERAL.has(action.name())) return;
    const { sweepCrashedEphemeral } = await import('../lifecycle/teardown.js');
    const { lxcStatusLookup } = await import('../lxc/lxcpath.js');
    const statusOf = lxcStatusLookup();
    const { swept, failed } = sweepCrashedEphemeral(settingsOf(action).root, (lxcpath, name) => statusOf(lxcpath, name)?.state);
    if (swept.length > 0 && debug) writeErr(`thin-lxc: removed ephemeral containers that stopped without their hook: ${swept.join(', ')}\n`);
    // Housekeeping never fails the command the user asked for: said once, left for a later command.
    for (const { name, reason } of failed) writeErr(`thin-lxc: warning: ephemeral container ${name} stopped without its hook and could not be removed: ${reason}\n`);
  });

  return program;
}

/** Every command that reads or changes containers; not template, which touches no host state. */
const SWEEPS_EPHEMERAL = new Set(['create', 'update', 'destroy', 'list', 'show', 'diff', 'commit', 'doctor', 'refresh', 'reload']);

/** doctor's findings are already printed: the exit code is all that is left to say. */
class DoctorFound extends Error {
  constructor(readonly count: number) {
    super(`${count} problem(s)`);
  }
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new UserError('thin-lxc must run as root (it registers containers with LXC and its hooks mount filesystems): use sudo');
  }
}
