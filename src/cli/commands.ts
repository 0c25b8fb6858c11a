/** The table of commands (SPEC §4): what each is called, what it takes, and what it does. */

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  /** Options beyond the common --config/--help, in util.parseArgs form. */
  options?: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;
  /** The issue that builds it, while it is not built yet. */
  pendingIssue?: number;
}

export const commands: readonly CommandSpec[] = [
  {
    name: 'start',
    usage: 'start [--config PATH]',
    summary: 'run the daemon in the foreground; installs or upgrades what is missing first',
  },
  {
    name: 'install',
    usage: 'install [--config PATH]',
    summary: "create or upgrade trigsync's schema, triggers and guards",
  },
  {
    name: 'uninstall',
    usage: 'uninstall [--table T ...] --yes [--config PATH]',
    summary: "remove trigsync's schema, triggers and guards; with --table, only those tables' capture",
    options: { yes: { type: 'boolean' }, table: { type: 'string', multiple: true } },
  },
  {
    name: 'status',
    usage: 'status [--json] [--check [--max-lag SECONDS]] [--config PATH]',
    summary: 'per target: state, backlog, lag, errors; the leader. --check: exit 1 if parked or lagging',
    options: { json: { type: 'boolean' }, check: { type: 'boolean' }, 'max-lag': { type: 'string' } },
  },
  {
    name: 'errors',
    usage: 'errors [TARGET] [--json] [--config PATH]',
    summary: 'the error queue: change id, table, operation, SQLSTATE, message, attempts',
    options: { json: { type: 'boolean' } },
  },
  {
    name: 'retry',
    usage: 'retry TARGET [--config PATH]',
    summary: 'retry a parked target now',
  },
  {
    name: 'skip',
    usage: 'skip TARGET CHANGE_ID --yes [--config PATH]',
    summary: 'drop one failed change for that target, recorded with who and when',
    options: { yes: { type: 'boolean' } },
  },
  {
    name: 'sync',
    usage: 'sync TARGET [--table T ...] [--config PATH]',
    summary: 'copy current data to a target online, then continue from there',
    options: { table: { type: 'string', multiple: true } },
  },
  {
    name: 'verify',
    usage: 'verify [TARGET] [--table T] [--json] [--wait SECONDS] [--config PATH]',
    summary: 'compare source and target tables; list differing keys',
    options: { table: { type: 'string' }, json: { type: 'boolean' }, wait: { type: 'string' } },
  },
  {
    name: 'repair',
    usage: 'repair TARGET [--table T] [--dry-run] [--wait SECONDS] [--config PATH]',
    summary: 'fix exactly the keys verify finds different, online, recorded; --dry-run: only say what',
    options: { table: { type: 'string' }, 'dry-run': { type: 'boolean' }, wait: { type: 'string' } },
  },
  {
    name: 'check',
    usage: 'check [--json] [--config PATH]',
    summary: 'validate the config and reach every database',
    options: { json: { type: 'boolean' } },
  },
  {
    name: 'demo',
    usage: 'demo [--duration SECONDS]',
    summary: 'the embedded demo (also npm run demo)',
    options: { duration: { type: 'string' } },
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return commands.find((c) => c.name === name);
}
