// Renders a thin container's LXC config from a Handlebars template and checks the result.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import HandlebarsRuntime from 'handlebars/runtime.js';
import { UserError } from '../core/errors.js';
import { hasControl, quote } from '../core/validate.js';
import { parseLxcConfig, type MountEntry } from './config.js';
import { DEFAULT_TEMPLATE_SPEC } from './default-template.js';
import { installationPath, thinHookOf, type HookName } from './install.js';

export interface ConfigView {
  version: string;
  id: string;
  name: string;
  baseName: string;
  baseConfig: string;
  baseLines: string[];
  fs: string;
  rootfs: string;
  wlayer: string;
  hwaddrs: { index: number; address: string }[];
  /** Bind mounts, escaped for lxc.mount.entry. */
  mounts: MountEntry[];
  autostart: boolean;
  /** The published ports, for the config's comment. */
  publish: string;
  ipv4: { index: number; address: string; prefix: number; broadcast: string; gateway: string; veth: string } | null;
  ipv6: { index: number; address: string; prefix: number; gateway: string } | null;
  /** Resource limits as config lines for the host's cgroup version. */
  limits: { key: string; value: string }[];
  /** The write layer's tmpfs size when it lives in memory. */
  tmpfs: string | null;
  ephemeral: boolean;
  /** An unprivileged container's map: its root is uid and gid `host` on the host. */
  idmap: { host: number; range: number } | null;
  hooks: {
    mount: string;
    /** The hook type the mount hook runs as: pre-mount, or pre-start for an unprivileged container. */
    mountType: string;
    destroy: string;
    clone: string;
    portsUp: string | null;
    portsDown: string;
    ephemeral: string | null;
  };
}

/** The hook lines as the template names them. */
export function hookView(hooks: readonly { hook: HookName; key: string; command: string }[]): ConfigView['hooks'] {
  const command = (name: HookName) => hooks.find((entry) => entry.hook === name)?.command ?? null;
  return {
    mount: command('mount')!,
    mountType: hooks.find((entry) => entry.hook === 'mount')!.key.replace(/^lxc\.hook\./, ''),
    destroy: command('destroy')!,
    clone: command('clone')!,
    portsUp: command('ports-up'),
    portsDown: command('ports-down')!,
    ephemeral: command('ephemeral'),
  };
}

type Handlebars = typeof import('handlebars');

/**
 * Renders a user's template. Only this path needs Handlebars' compiler (loading it costs ~40 ms), so the
 * build bundles it apart, as dist/bin/handlebars.js, loaded here on first use; the installed package
 * needs no dependency of its own.
 */
export function renderConfig(template: string, view: ConfigView): string {
  rejectControlCharacters(view);
  const compiler = createRequire(import.meta.url)(installationPath('dist', 'bin', 'handlebars.js')) as Handlebars;
  // LXC configs are not HTML: values go in as they are (and were validated before).
  return checked(compiler.compile(template, { noEscape: true })(view), view);
}

/** Renders the default template, precompiled at build time when it was built with npm run build. */
export function renderDefaultConfig(view: ConfigView): string {
  if (!DEFAULT_TEMPLATE_SPEC) return renderConfig(readTemplate(), view);
  rejectControlCharacters(view);
  const runtime = HandlebarsRuntime as unknown as Handlebars;
  const render = runtime.template(DEFAULT_TEMPLATE_SPEC as Parameters<Handlebars['template']>[0]);
  return checked(render(view), view);
}

function checked(text: string, view: ConfigView): string {
  requireThinLines(text, view);
  return text;
}

export function readTemplate(path = installationPath('templates', 'config.hbs')): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new UserError(`template ${quote(path)} cannot be read: check the path (thin-lxc template prints the default to start from)`);
  }
}

/** Any value with a newline or other control character could become a config line of its own. */
function rejectControlCharacters(value: unknown, field = 'value'): void {
  if (typeof value === 'string' && hasControl(value)) {
    throw new UserError(`${field} ${quote(value)} contains a control character and cannot go into an LXC config`);
  }
  if (Array.isArray(value)) value.forEach((item) => rejectControlCharacters(item, field));
  else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) rejectControlCharacters(item, key);
  }
}

/** thin-lxc works only if the config keeps its rootfs and hook lines, whatever the template. */
function requireThinLines(text: string, view: ConfigView): void {
  const entries = parseLxcConfig(text);
  const has = (key: string, value: string) => entries.some((entry) => entry.key === key && entry.value === value);
  const required: [string, string][] = [
    ['lxc.rootfs.path', `dir:${view.rootfs}`],
    ['lxc.hook.version', '1'],
    [`lxc.hook.${view.hooks.mountType}`, view.hooks.mount],
    ['lxc.hook.destroy', view.hooks.destroy],
    ['lxc.hook.clone', view.hooks.clone],
    ['lxc.hook.post-stop', view.hooks.portsDown],
  ];
  if (view.idmap) {
    required.push(['lxc.idmap', `u 0 ${view.idmap.host} ${view.idmap.range}`], ['lxc.idmap', `g 0 ${view.idmap.host} ${view.idmap.range}`]);
    required.push(['lxc.monitor.unshare', '1']);
  }
  if (view.hooks.portsUp) required.push(['lxc.hook.start-host', view.hooks.portsUp]);
  if (view.hooks.ephemeral) required.push(['lxc.hook.post-stop', view.hooks.ephemeral]);
  const missing = [...new Set(required.filter(([key, value]) => !has(key, value)).map(([key]) => key))];
  if (missing.length > 0) {
    throw new UserError(`the config template drops lines thin-lxc needs (${missing.join(', ')}): keep them as in templates/config.hbs`);
  }
}

/**
 * A config whose thin-lxc hook lines are the given ones (this installation's): each of ours is replaced in
 * place, one no longer needed goes, and any missing is added at the end. Everything else stays as it is,
 * whatever template made it.
 */
export function withHookLines(config: string, hooks: readonly { hook: HookName; key: string; command: string }[], heading = 'Added by thin-lxc refresh.'): string {
  const placed = new Set<HookName>();
  const lines = config.split('\n').flatMap((line) => {
    const entry = /^\s*(lxc\.hook\.[a-z-]+)\s*=\s*(.*)$/.exec(line);
    const hook = entry ? thinHookOf(entry[2]!) : null;
    if (!hook) return [line];
    const wanted = hooks.find((candidate) => candidate.hook === hook);
    if (!wanted || placed.has(hook)) return [];
    placed.add(hook);
    return [`${wanted.key} = ${wanted.command}`];
  });
  const missing = hooks.filter((wanted) => !placed.has(wanted.hook));
  if (missing.length === 0) return lines.join('\n');
  const text = lines.join('\n').replace(/\n*$/, '\n');
  return `${text}\n# ${heading}\n${missing.map((wanted) => `${wanted.key} = ${wanted.command}`).join('\n')}\n`;
}
