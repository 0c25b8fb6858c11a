/**
 * The table of commands (SPEC §4): what each is called, what it takes, what it does, and where the docs
 * say more. The parser (main.ts), the help (help.ts) and the commands' option readers (secondsOption in
 * commands/common.ts) all read this one description, so a default shown in the help is the one used.
 */

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** May be given more than once (`--table A --table B`); the command then gets a list. */
  multiple?: boolean;
  /** How the help names a string option's value: `--wait SECONDS`. */
  value?: string;
  description: string;
  /** A number of seconds: the command reads it with secondsOption, which applies these. */
  seconds?: { default: number; minimum: number; whole?: boolean };
  /** What the command does without the option, for the help (a seconds option shows its default). */
  absent?: string;
  /** The command refuses to act without it (a confirmation), so usage shows it unbracketed. */
  confirms?: boolean;
}

export interface ArgumentSpec {
  /** As usage shows it: TARGET. */
  name: string;
  required: boolean;
  description: string;
  /** What the command does without it, for an optional one. */
  absent?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Positional arguments after the command word, in order; the required ones first. */
  arguments: readonly ArgumentSpec[];
  /** Options beyond the common ones (--config, --help, --version). */
  options: Readonly<Record<string, OptionSpec>>;
  /** A command that reads no configuration (demo, help) takes no --config. */
  withoutConfig?: boolean;
  /** Command lines after `trigsync`, each with what it does. */
  examples: readonly { run: string; does: string }[];
  /** The section of the docs that says more, as a path from the repository's root. */
  docs: string;
}

/** Options every command takes; --config only those that read a configuration. */
export const commonOptions = {
  config: {
    type: 'string',
    short: 'c',
    value: 'PATH',
    description: 'the configuration file, YAML or JSON',
    absent: '$TRIGSYNC_CONFIG',
  },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
  version: { type: 'boolean', short: 'V', description: 'print the version' },
} as const satisfies Record<string, OptionSpec>;

const json = { type: 'boolean', description: 'print the result as one JSON document' } as const;

const target = (description: string): ArgumentSpec => ({ name: 'TARGET', required: true, description });

/** verify and repair wait alike for the target to hold what the source's snapshot holds. */
const wait: OptionSpec = {
  type: 'string',
  value: 'SECONDS',
  description: 'how long to wait for the target to catch up first',
  seconds: { default: 30, minimum: 0 },
};

const onlyTable = (what: string, absent: string): OptionSpec => ({
  type: 'string',
  value: 'T',
  description: `${what} only this table, schema.table`,
  absent,
});

export const commands: readonly CommandSpec[] = [
  {
    name: 'start',
    summary: 'run the daemon in the foreground; it installs or upgrades first',
    arguments: [],
    options: {},
    examples: [{ run: 'start --config trigsync.yaml', does: 'SIGTERM or Ctrl-C stops it cleanly' }],
    docs: 'docs/operations.md#install-start-stop',
  },
  {
    name: 'install',
    summary: "create or upgrade trigsync's schema, triggers and guards",
    arguments: [],
    options: {},
    examples: [{ run: 'install --config trigsync.yaml', does: 'what start does first; safe to repeat' }],
    docs: 'docs/operations.md#install-start-stop',
  },
  {
    name: 'uninstall',
    summary: "remove trigsync's schema, triggers and guards, or only some tables' capture",
    arguments: [],
    options: {
      table: {
        type: 'string',
        value: 'T',
        multiple: true,
        description: "remove only this table's capture",
        absent: 'everything',
      },
      yes: {
        type: 'boolean',
        confirms: true,
        description: 'confirm: what it removes cannot be brought back',
      },
    },
    examples: [
      { run: 'uninstall --yes --config trigsync.yaml', does: 'stop every daemon first' },
      { run: 'uninstall --table public.audit --yes', does: 'stop capturing one table' },
    ],
    docs: 'docs/operations.md#uninstall',
  },
  {
    name: 'status',
    summary: "every target's state, backlog, lag and errors, and the leader",
    arguments: [],
    options: {
      json,
      check: {
        type: 'boolean',
        description: 'exit 1 if a target is parked or lags over --max-lag, or no daemon leads',
      },
      'max-lag': {
        type: 'string',
        value: 'SECONDS',
        description: 'the lag --check accepts',
        seconds: { default: 60, minimum: 0 },
      },
    },
    examples: [
      { run: 'status', does: 'one line per target, then the change log and the leader' },
      { run: 'status --check --max-lag 120', does: 'for a monitoring probe: exit 1 on a problem' },
    ],
    docs: 'docs/operations.md#status',
  },
  {
    name: 'errors',
    summary: 'the error queue: change id, table, operation, SQLSTATE, message, attempts',
    arguments: [
      { name: 'TARGET', required: false, description: "only this target's errors", absent: 'every target' },
    ],
    options: { json },
    examples: [{ run: 'errors reporting', does: 'the changes target reporting refuses, and why' }],
    docs: 'docs/operations.md#a-parked-target',
  },
  {
    name: 'retry',
    summary: 'retry a parked target now',
    arguments: [target('the parked target')],
    options: {},
    examples: [{ run: 'retry reporting', does: 'after fixing the target; a running daemon acts at once' }],
    docs: 'docs/operations.md#a-parked-target',
  },
  {
    name: 'skip',
    summary: 'drop one failed change for that target, recorded with who and when',
    arguments: [
      target('the parked target'),
      { name: 'CHANGE_ID', required: true, description: 'the change to drop, as trigsync errors lists it' },
    ],
    options: {
      yes: {
        type: 'boolean',
        confirms: true,
        description: 'confirm: the target never gets this change',
      },
    },
    examples: [{ run: 'skip reporting 123456 --yes', does: 'the target then differs on that row' }],
    docs: 'docs/operations.md#a-parked-target',
  },
  {
    name: 'sync',
    summary: 'copy current data to a target online, then continue from there',
    arguments: [target('the target to copy to')],
    options: {
      table: { ...onlyTable('copy', 'every table'), multiple: true },
    },
    examples: [
      { run: 'sync reporting', does: 'every table of the target' },
      { run: 'sync reporting --table public.orders', does: 'one table; the others keep following' },
    ],
    docs: 'docs/operations.md#copy-a-target-again',
  },
  {
    name: 'pause',
    summary: 'stop applying to a target, keeping its changes on the source, until resumed',
    arguments: [target('the target to pause')],
    options: {},
    examples: [
      { run: 'pause reporting', does: "before maintenance on reporting's server; the other targets go on" },
    ],
    docs: 'docs/operations.md#pause-a-target',
  },
  {
    name: 'resume',
    summary: 'apply to a paused target again, from where it stopped',
    arguments: [target('the paused target')],
    options: {},
    examples: [{ run: 'resume reporting', does: 'a running daemon applies what waited at once' }],
    docs: 'docs/operations.md#pause-a-target',
  },
  {
    name: 'verify',
    summary: 'compare source and target tables; list differing keys',
    arguments: [
      { name: 'TARGET', required: false, description: 'the target to compare', absent: 'every target' },
    ],
    options: {
      table: onlyTable('compare', 'every table'),
      json,
      wait,
    },
    examples: [
      { run: 'verify reporting', does: 'every table of target reporting' },
      { run: 'verify --table public.orders --wait 120', does: 'one table, on every target' },
    ],
    docs: 'docs/operations.md#verify',
  },
  {
    name: 'repair',
    summary: 'fix exactly the keys verify finds different, online, and record each',
    arguments: [target('the target to repair')],
    options: {
      table: onlyTable('repair', 'every table'),
      'dry-run': { type: 'boolean', description: 'list what it would write, key by key; change nothing' },
      wait,
    },
    examples: [
      { run: 'repair reporting --dry-run', does: 'what it would do; changes nothing' },
      { run: 'repair reporting --table public.orders', does: 'one table; the others are not touched' },
    ],
    docs: 'docs/operations.md#repair',
  },
  {
    name: 'check',
    summary: 'validate the config and reach every database',
    arguments: [],
    options: { json },
    examples: [{ run: 'check --config trigsync.yaml', does: 'changes nothing' }],
    docs: 'docs/configuration.md#errors',
  },
  {
    name: 'demo',
    summary: 'the embedded demo (also npm run demo)',
    arguments: [],
    options: {
      duration: {
        type: 'string',
        value: 'SECONDS',
        description: 'how long the demo runs',
        // At least time for the servers to start, the replicas to copy, one outage, its recovery, verify.
        seconds: { default: 60, minimum: 20, whole: true },
      },
    },
    withoutConfig: true,
    examples: [{ run: 'demo --duration 30', does: 'three embedded servers; Ctrl-C stops it' }],
    docs: 'README.md#try-it',
  },
];

/** `trigsync help [COMMAND]`: not in the table of SPEC §4, but parsed and shown as a command is. */
export const helpCommand: CommandSpec = {
  name: 'help',
  summary: "this overview, or a command's options, defaults and examples",
  arguments: [
    {
      name: 'COMMAND',
      required: false,
      description: 'the command to explain',
      absent: 'every command, a line each',
    },
  ],
  options: {},
  withoutConfig: true,
  examples: [{ run: 'help verify', does: 'the same as trigsync verify --help' }],
  docs: 'README.md#documentation',
};

export function findCommand(name: string): CommandSpec | undefined {
  return commands.find((c) => c.name === name);
}

/** The options a command's line may hold: its own and the common ones. */
export function optionsOf(spec: CommandSpec): Record<string, OptionSpec> {
  const { config, ...always } = commonOptions;
  return { ...spec.options, ...(spec.withoutConfig === true ? {} : { config }), ...always };
}
