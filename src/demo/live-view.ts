/**
 * The demo's screen. On a terminal: a status table redrawn in place every second, with what happens
 * ("notes") printed above it. Elsewhere (a pipe, a log, CI): the notes, and a plain status line every
 * few seconds, without escape codes.
 */
import type { TargetState } from '../lib/status-report.js';
import type { MonitorSnapshot, TargetView } from './monitor.js';

export interface Terminal {
  print(line: string): void;
  /** Raw output with escape codes: present only when stdout is a terminal. */
  write?: (text: string) => void;
  /** Width of the terminal, to keep redrawn lines from wrapping (which would break the redraw). */
  columns?: () => number | undefined;
}

const ttyIntervalMs = 1_000;
const plainIntervalMs = 3_000;

const stateColours: Partial<Record<TargetState, string>> = {
  live: '\x1b[32m',
  catching_up: '\x1b[33m',
  syncing: '\x1b[36m',
  parked: '\x1b[31m',
};

const header = ['TARGET', 'STATE', 'BACKLOG', 'LAG', 'CHANGES/S', 'APPLIED', 'ERRORS'];
/** Per column of the table: target, state (catching_up), backlog, lag, rate, applied, errors. */
const minimumWidths = [9, 11, 7, 6, 9, 8, 6];

const count = (n: number): string => n.toLocaleString('en-US');
const optional = (n: number | undefined, show: (n: number) => string): string =>
  n === undefined ? '-' : show(n);
const seconds = (s: number): string => `${s.toFixed(1)}s`;

export class LiveView {
  private timer: NodeJS.Timeout | undefined;
  /** Lines of the table now on screen, which the next redraw replaces. */
  private drawn = 0;
  private phase = 'starting';

  constructor(
    private readonly terminal: Terminal,
    private readonly snapshot: () => MonitorSnapshot,
    private readonly durationSeconds: number,
    /** When the demo started (Date.now()), which times on screen count from. */
    private readonly startedAt: number,
  ) {}

  private get tty(): boolean {
    return this.terminal.write !== undefined;
  }

  start(): void {
    if (this.timer !== undefined) return;
    const tick = this.tty ? () => this.redraw() : () => this.terminal.print(this.statusLine());
    this.timer = setInterval(tick, this.tty ? ttyIntervalMs : plainIntervalMs);
    if (this.tty) this.redraw();
  }

  /** Stop redrawing; the last table stays on screen, and later lines print below it. */
  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty) this.redraw();
    else this.terminal.print(this.statusLine());
    this.drawn = 0;
  }

  setPhase(phase: string): void {
    this.phase = phase;
    this.note(`phase: ${phase}`);
  }

  /** A line that stays: printed above the live table. */
  note(text: string): void {
    const line = `[${this.elapsed().padStart(4)}] ${text}`;
    if (this.timer === undefined || !this.tty) {
      this.terminal.print(line);
      return;
    }
    this.erase();
    this.terminal.print(line);
    this.redraw();
  }

  private elapsed(): string {
    return `${Math.round((Date.now() - this.startedAt) / 1000)}s`;
  }

  private erase(): void {
    // Up to the first line of the table, then clear to the end of the screen.
    if (this.drawn > 0) this.terminal.write?.(`\x1b[${this.drawn}F\x1b[J`);
    this.drawn = 0;
  }

  private redraw(): void {
    // Some terminals (and pseudo-terminals) report no width, or 0.
    const columns = this.terminal.columns?.() ?? 0;
    const width = columns > 0 ? columns : 120;
    const lines = this.tableLines().map((line) => fit(line, width));
    this.erase();
    this.terminal.write?.(`${lines.join('\n')}\n`);
    this.drawn = lines.length;
  }

  private tableLines(): string[] {
    const s = this.snapshot();
    const rows = tableRows(s.targets);
    // Room for the usual values from the start, so that columns do not shift as numbers grow.
    const widths = header.map((h, i) =>
      Math.max(h.length, minimumWidths[i] ?? 0, ...rows.map((r) => r[i]!.length)),
    );
    // Names, states and errors to the left, numbers to the right; the errors' text is not padded.
    const cell = (text: string, i: number): string =>
      i === header.length - 1 ? text : i < 2 ? text.padEnd(widths[i]!) : text.padStart(widths[i]!);
    const colour = (row: string[]): string =>
      row
        .map((text, i) => {
          const padded = cell(text, i);
          const code = i === 1 ? stateColours[text as TargetState] : undefined;
          return code === undefined ? padded : `${code}${padded}\x1b[0m`;
        })
        .join('  ');
    return [
      '',
      `\x1b[1mtrigsync demo\x1b[0m  ${this.elapsed()} of ${this.durationSeconds}s   (Ctrl-C stops it and cleans up)`,
      `phase: ${this.phase}`,
      `source: ${count(Math.round(s.sourceTxPerSecond))} tx/s, ${count(s.committed)} transactions` +
        (s.failed > 0 ? ` (${count(s.failed)} rolled back)` : '') +
        (s.logRows === undefined ? '' : `; change log: ${count(s.logRows)} rows`),
      `\x1b[2m${header.map(cell).join('  ')}\x1b[0m`,
      ...rows.map(colour),
      '',
    ];
  }

  private statusLine(): string {
    const s = this.snapshot();
    const targets = s.targets.map(targetSummary);
    return `[${this.elapsed().padStart(4)}] source ${Math.round(s.sourceTxPerSecond)} tx/s | ${targets.join(' | ')}`;
  }
}

/** The table's rows, one per target, a cell per column of `header`. */
export function tableRows(targets: readonly TargetView[]): string[][] {
  return targets.map((t) => [
    t.name,
    t.state,
    optional(t.backlog, count),
    optional(t.lagSeconds, seconds),
    count(Math.round(t.rate)),
    count(t.applied),
    t.errors,
  ]);
}

/** A target in the plain status line. */
export function targetSummary(t: TargetView): string {
  return (
    `${t.name} ${t.state} backlog ${optional(t.backlog, String)} lag ${optional(t.lagSeconds, seconds)} ` +
    `${Math.round(t.rate)}/s applied ${t.applied} errors ${t.errors}`
  );
}

/** Cut a line to the terminal's width, counting visible characters only (escape codes take none). */
function fit(line: string, width: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (char === '\x1b') {
      // ESC [ parameters, up to and including the final letter.
      let end = i + 1;
      while (end < line.length && !/[A-Za-z]/.test(line[end]!)) end++;
      out += line.slice(i, end + 1);
      i = end;
    } else if (visible < width - 1) {
      out += char;
      visible++;
    }
  }
  return out;
}
