// Accepts the original thin-lxc's command lines verbatim (`thin-lxc -a create -b DIR -id ID -n NAME -ip IP ...`)
// by rewriting them into today's form before commander sees them.

// Multi-letter single-dash flags that commander would read as bundles of short flags.
const LEGACY_FLAGS: Record<string, string> = {
  '-id': '--id',
  '-ip': '--ip',
  '-bm': '--mount',
  '-name': '--name',
};

/** Commands whose target the original passed as `-id ID`; today it is a positional argument. */
const TARGET_BY_ID = new Set(['destroy', 'show']);

export function translateLegacyArgs(args: readonly string[]): string[] {
  const actionAt = args.findIndex((arg) => arg === '-a' || arg === '--action');
  const action = actionAt >= 0 ? args[actionAt + 1] : undefined;
  const rest = actionAt >= 0 ? [...args.slice(0, actionAt), ...args.slice(actionAt + 2)] : [...args];
  const translated = rest.map((arg) => LEGACY_FLAGS[arg] ?? arg);
  if (action === undefined) return translated;
  if (TARGET_BY_ID.has(action)) {
    const idAt = translated.indexOf('--id');
    const id = idAt >= 0 ? translated[idAt + 1] : undefined;
    if (id !== undefined) translated.splice(idAt, 2, id);
  }
  return [action, ...translated];
}
