// Where thin containers live and which lxcpath registers them: defaults, then the ini file, then env, then flags.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'ini';
import { UserError } from '../core/errors.js';
import { validatePlainPath } from '../core/validate.js';
import { parseLxcConfig, lastValue } from '../lxc/config.js';
import { hostDefaultMap } from '../lxc/subids.js';
import { formatIdMap, parseIdMap } from '../union/idmap.js';

export interface Settings {
  /** Holds one directory per thin container (the original's /containers). */
  root: string;
  /** LXC's container path, where thin containers are registered so `lxc-start -n NAME` finds them. */
  lxcpath: string;
  /**
   * create's default when neither --unprivileged nor --privileged is given: the map (HOSTID:RANGE) of
   * `unprivileged = true` or `unprivileged = HOSTID:RANGE` in the settings file; absent: privileged.
   */
  unprivileged?: string;
}

export interface SettingsInput {
  flags: { root?: string | undefined; lxcpath?: string | undefined };
  env: NodeJS.ProcessEnv;
  cwd: string;
  readText?: (path: string) => string | undefined;
}

export const DEFAULT_ROOT = '/containers';
export const DEFAULT_SETTINGS_FILE = '/etc/thin-lxc/thin-lxc.ini';
const LXC_SYSTEM_CONFIG = '/etc/lxc/lxc.conf';
const LXC_DEFAULT_LXCPATH = '/var/lib/lxc';

export function resolveSettings({ flags, env: given, cwd, readText = readTextIfPresent }: SettingsInput): Settings {
  // `export THIN_LXC_ROOT=` is how a shell user unsets it for a command: empty means not set.
  const env = (name: string) => given[name] || undefined;
  const fromFile = parse(readText(env('THIN_LXC_CONFIG') ?? DEFAULT_SETTINGS_FILE) ?? '') as Record<string, unknown>;
  const fileValue = (key: string) => (typeof fromFile[key] === 'string' ? (fromFile[key] as string) : undefined);
  const lxcConf = parseLxcConfig(readText(LXC_SYSTEM_CONFIG) ?? '');

  const root = flags.root ?? env('THIN_LXC_ROOT') ?? fileValue('root') ?? DEFAULT_ROOT;
  const lxcpath =
    flags.lxcpath ?? env('THIN_LXC_LXCPATH') ?? fileValue('lxcpath') ?? lastValue(lxcConf, 'lxc.lxcpath') ?? LXC_DEFAULT_LXCPATH;
  const unprivileged = defaultIdMap(fromFile.unprivileged, env('THIN_LXC_CONFIG') ?? DEFAULT_SETTINGS_FILE);
  return {
    root: validatePlainPath(resolve(cwd, root), 'root', 'choose another root with --root or THIN_LXC_ROOT'),
    lxcpath: validatePlainPath(resolve(cwd, lxcpath), 'lxcpath', 'choose another with --lxcpath'),
    ...(unprivileged === null ? {} : { unprivileged }),
  };
}

/** `unprivileged = true` (the default map), `false`, or a map HOSTID:RANGE; ini reads true and false as booleans. */
function defaultIdMap(value: unknown, file: string): string | null {
  if (value === undefined || value === false || value === 'false') return null;
  if (value === true || value === 'true') return formatIdMap(hostDefaultMap());
  if (typeof value === 'string') {
    try {
      return formatIdMap(parseIdMap(value));
    } catch {
      // parseIdMap names --idmap; this came from the file.
    }
  }
  throw new UserError(`unprivileged = ${String(value)} in ${file} is not true, false or HOSTID:RANGE (e.g. 100000:65536): fix that line`);
}

function readTextIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
