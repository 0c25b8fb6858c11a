// deploy/: the Prometheus alert rules and the Grafana dashboard, as docker-compose.yml mounts them. Every
// PromQL expression in them must parse with the grammar Prometheus' own UI uses (@prometheus-io/lezer-promql)
// and name only series the daemon exports, with labels they carry; every series of the daemon's own must
// show on the dashboard. The exported series come from the daemon's registry, not from a list here. No
// database, no Docker.
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { SyntaxNode } from '@lezer/common';
import { parser } from '@prometheus-io/lezer-promql';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { TrigsyncEvents } from '../../src/lib/events.js';
import { Metrics } from '../../src/metrics/metrics.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

const rulesFile = 'deploy/prometheus/trigsync-rules.yml';
const dashboardFile = 'deploy/grafana/trigsync.json';

// ---- what the daemon exports ----

interface Series {
  /** The metric the series belongs to (a histogram's name for its _bucket, _sum and _count). */
  metric: string;
  type: string;
  labels: Set<string>;
}

/** Labels Prometheus puts on every series it scrapes. */
const targetLabels = ['job', 'instance'];

/** Every series name a scrape of the daemon shows, from the registry the daemon builds. */
async function exportedSeries(): Promise<Map<string, Series>> {
  const { registry } = new Metrics(new TrigsyncEvents());
  const series = new Map<string, Series>();
  for (const metric of await registry.getMetricsAsJSON()) {
    const { name } = metric;
    // prom-client's types declare a numeric enum; the value is the exposition's word, e.g. 'counter'.
    const type = String(metric.type);
    // prom-client keeps the labelNames a metric was declared with; its types leave them out.
    const declared = (registry.getSingleMetric(name) as { labelNames?: readonly string[] } | undefined)
      ?.labelNames;
    const labels = [...(declared ?? []), ...targetLabels];
    const add = (suffix: string, extra: string[] = []) =>
      series.set(name + suffix, { metric: name, type, labels: new Set([...labels, ...extra]) });
    if (type === 'histogram') {
      add('_bucket', ['le']);
      add('_sum');
      add('_count');
    } else if (type === 'summary') {
      add('', ['quantile']);
      add('_sum');
      add('_count');
    } else {
      add('');
    }
  }
  return series;
}

/** The daemon's own metrics: its registry less prom-client's process defaults. */
async function ownMetrics(): Promise<{ name: string; type: string }[]> {
  const defaults = new Registry();
  collectDefaultMetrics({ register: defaults });
  const defaultNames = new Set((await defaults.getMetricsAsJSON()).map((m) => m.name));
  const { registry } = new Metrics(new TrigsyncEvents());
  return (await registry.getMetricsAsJSON())
    .filter((m) => !defaultNames.has(m.name))
    .map(({ name, type }) => ({ name, type: String(type) }));
}

const series = await exportedSeries();
const own = await ownMetrics();

// ---- PromQL ----

interface Checked {
  /** What is wrong with the expression: syntax errors, unknown series or labels, counters misused. */
  problems: string[];
  /** The series names its selectors name. */
  names: string[];
}

const rangeFunctions = new Set(['Rate', 'Irate', 'Increase']);

/** The function a range selector is the argument of, e.g. `Rate` for rate(x[5m]). */
function enclosingFunction(selector: SyntaxNode): string | undefined {
  const call = selector.parent?.type.name === 'MatrixSelector' ? selector.parent.parent?.parent : undefined;
  if (call?.type.name !== 'FunctionCall') return undefined;
  return call.getChild('FunctionIdentifier')?.firstChild?.type.name;
}

function descendants(node: SyntaxNode | null): SyntaxNode[] {
  const found: SyntaxNode[] = [];
  for (let child = node?.firstChild ?? null; child !== null; child = child.nextSibling) {
    found.push(child, ...descendants(child));
  }
  return found;
}

/** Parse a PromQL expression and check the series it selects against what the daemon exports. */
function checkPromql(expr: string): Checked {
  const problems: string[] = [];
  const names: string[] = [];
  const text = (node: SyntaxNode) => expr.slice(node.from, node.to);
  const tree = parser.parse(expr);
  tree.iterate({
    enter: (ref) => {
      const node = ref.node;
      if (node.type.isError) {
        const at =
          node.from < expr.length ? JSON.stringify(expr.slice(node.from, node.from + 20)) : 'the end';
        problems.push(`syntax error at ${at} (offset ${node.from})`);
      } else if (node.type.name === 'VectorSelector') {
        const name = node.getChild('Identifier');
        if (name === null) {
          problems.push(`a selector without a metric name: ${text(node)}`);
          return;
        }
        const found = series.get(text(name));
        names.push(text(name));
        if (found === undefined) {
          problems.push(`${text(name)} is not a series the daemon exports`);
          return;
        }
        for (const label of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
          const labelName = text(label.getChild('LabelName') ?? label);
          if (!found.labels.has(labelName)) problems.push(`${text(name)} has no label ${labelName}`);
        }
        // A counter (a histogram's parts too) means something only as a rate; a gauge never as one.
        const isCounter = found.type === 'counter' || found.type === 'histogram';
        const fn = enclosingFunction(node);
        if (isCounter && (fn === undefined || !rangeFunctions.has(fn))) {
          problems.push(`${text(name)} is a counter: use it in rate() or increase()`);
        } else if (!isCounter && fn !== undefined && rangeFunctions.has(fn)) {
          problems.push(`${text(name)} is a gauge: rate() and increase() do not apply`);
        }
      } else if (node.type.name === 'AggregateExpr') {
        // `by (label)` must name a label of some series the aggregation reads.
        const modifier = node.getChild('AggregateModifier');
        if (modifier?.getChild('By') === null) return;
        const inner = descendants(node.getChild('FunctionCallBody'))
          .filter((n) => n.type.name === 'VectorSelector')
          .flatMap((selector) => series.get(text(selector.getChild('Identifier') ?? selector)) ?? []);
        for (const label of modifier?.getChild('GroupingLabels')?.getChildren('LabelName') ?? []) {
          if (inner.length > 0 && !inner.some((s) => s.labels.has(text(label)))) {
            problems.push(`by (${text(label)}): no series it aggregates has that label`);
          }
        }
      }
    },
  });
  if (expr.trim() === '') problems.push('empty expression');
  return { problems, names };
}

// ---- Grafana's variables ----

/** Grafana's own variables, each with a value of its kind (the intervals as durations). */
const grafanaBuiltins: Record<string, string> = {
  __rate_interval: '5m',
  __interval: '1m',
  __range: '1h',
  __interval_ms: '60000',
  __range_s: '3600',
};

/**
 * An expression as Prometheus gets it: each `$name`, `${name}`, `${name:format}` or `[[name]]` replaced by
 * a plain value (a dashboard variable's values are label values, inside a matcher's string). A variable
 * neither the dashboard nor Grafana defines is a problem: it would reach Prometheus as it is.
 */
function expandVariables(expr: string, defined: Set<string>): { expr: string; unknown: string[] } {
  const unknown: string[] = [];
  const expanded = expr.replace(
    /\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]/g,
    (whole, braced?: string, plain?: string, bracketed?: string) => {
      const name = braced ?? plain ?? bracketed ?? '';
      if (name in grafanaBuiltins) return grafanaBuiltins[name] ?? whole;
      if (defined.has(name)) return 'value';
      unknown.push(name);
      return whole;
    },
  );
  return { expr: expanded, unknown };
}

// ---- the files ----

interface Rule {
  alert?: string;
  record?: string;
  expr?: unknown;
  for?: unknown;
  labels?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}
interface RuleGroup {
  name?: string;
  rules?: Rule[];
}

const ruleGroups = (parse(read(rulesFile)) as { groups?: RuleGroup[] }).groups ?? [];
const rules = ruleGroups.flatMap((group) => group.rules ?? []);

interface Target {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
}
interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: Panel[];
  templating?: { list?: Variable[] };
}

const dashboard = JSON.parse(read(dashboardFile)) as Dashboard;
/** Every panel, those inside collapsed rows too; rows themselves left out. */
const panels = (function flatten(list: Panel[]): Panel[] {
  return list.flatMap((p) => [...(p.type === 'row' ? [] : [p]), ...flatten(p.panels ?? [])]);
})(dashboard.panels ?? []);
const variables = dashboard.templating?.list ?? [];
const variableNames = new Set(variables.map((v) => v.name));
const datasourceVariable = variables.find((v) => v.type === 'datasource');

/** The PromQL a query variable runs: `label_values(selector, label)` or `query_result(expr)`. */
function variablePromql(v: Variable): { expr: string; label?: string } {
  const query = (typeof v.query === 'string' ? v.query : v.query?.query) ?? '';
  const labelValues = /^\s*label_values\((.*),\s*(\w+)\s*\)\s*$/s.exec(query);
  if (labelValues !== null) return { expr: labelValues[1] ?? '', label: labelValues[2] ?? '' };
  const result = /^\s*query_result\((.*)\)\s*$/s.exec(query);
  return { expr: result?.[1] ?? `unchecked Grafana query: ${query}` };
}

/** Every PromQL expression of the dashboard, where it is, as Prometheus would get it. */
const dashboardExpressions = [
  ...panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, raw: t.expr ?? '' })),
  ),
  ...variables
    .filter((v) => v.type === 'query')
    .map((v) => ({ where: `variable ${v.name}`, raw: variablePromql(v).expr })),
].map(({ where, raw }) => ({ where, raw, ...expandVariables(raw, variableNames) }));

// ---- the tests ----

describe('the exported series this test checks against', () => {
  it('come from the daemon: its own metrics, histograms as _bucket/_sum/_count, and the defaults', () => {
    expect(own.length).toBeGreaterThan(5);
    expect(series.get('trigsync_target_lag_seconds')?.labels.has('target')).toBe(true);
    expect(series.get('trigsync_batch_duration_seconds_bucket')?.labels.has('le')).toBe(true);
    expect(series.has('trigsync_batch_duration_seconds')).toBe(false);
    expect(series.has('process_cpu_seconds_total')).toBe(true);
  });

  it('are checked: a misspelt metric, a missing label, a raw counter and a broken expression fail', () => {
    expect(checkPromql('max by (target) (trigsync_target_lag_seconds)').problems).toEqual([]);
    expect(checkPromql('trigsync_target_lag_second').problems).toEqual([
      'trigsync_target_lag_second is not a series the daemon exports',
    ]);
    expect(checkPromql('trigsync_leader{target="a"}').problems).toEqual([
      'trigsync_leader has no label target',
    ]);
    expect(checkPromql('sum by (kind) (trigsync_target_lag_seconds)').problems).toHaveLength(1);
    expect(checkPromql('sum(trigsync_changes_applied_total)').problems).toHaveLength(1);
    expect(checkPromql('rate(trigsync_target_lag_seconds[5m])').problems).toHaveLength(1);
    expect(checkPromql('sum(rate(trigsync_changes_applied_total[5m]) by').problems).not.toEqual([]);
    expect(checkPromql('{__name__="trigsync_leader"}').problems).toHaveLength(1);
    expect(expandVariables('rate(x{t=~"$target"}[$__rate_interval])', new Set(['target']))).toEqual({
      expr: 'rate(x{t=~"value"}[5m])',
      unknown: [],
    });
    expect(expandVariables('x{t=~"$targte"}', new Set(['target'])).unknown).toEqual(['targte']);
  });
});

describe(rulesFile, () => {
  it('is one Prometheus rule group of alerts, each with an expression and a valid for', () => {
    expect(ruleGroups.map((g) => g.name)).toEqual(['trigsync']);
    expect(rules.length).toBeGreaterThan(0);
    const allowed = ['alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations'];
    for (const rule of rules) {
      expect(rule.alert, JSON.stringify(rule)).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
      expect(
        Object.keys(rule).filter((key) => !allowed.includes(key)),
        rule.alert,
      ).toEqual([]);
      expect(typeof rule.expr, rule.alert).toBe('string');
      if (rule.for !== undefined) expect(rule.for, rule.alert).toMatch(/^(\d+(ms|s|m|h|d|w|y))+$/);
      for (const map of [rule.labels ?? {}, rule.annotations ?? {}]) {
        for (const [key, value] of Object.entries(map)) {
          expect(key, rule.alert).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
          expect(typeof value, `${rule.alert} ${key}`).toBe('string');
        }
      }
    }
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
  });

  it('has expressions that parse and name only series the daemon exports', () => {
    for (const rule of rules) {
      const { problems, names } = checkPromql(String(rule.expr));
      expect(problems, `${rule.alert}: ${String(rule.expr)}`).toEqual([]);
      expect(names.length, rule.alert).toBeGreaterThan(0);
    }
  });

  it('is where docs/operations.md points, which names each alert and repeats no expression', () => {
    const docs = read('docs/operations.md');
    expect(docs).toContain(`(../${rulesFile})`);
    const squeeze = (s: string) => s.replace(/\s+/g, '');
    for (const rule of rules) {
      expect(docs).toContain(`\`${rule.alert}\``);
      expect(squeeze(docs), `${rule.alert}'s expression`).not.toContain(squeeze(String(rule.expr)));
    }
  });
});

describe(dashboardFile, () => {
  it('is a Grafana dashboard whose panels query Prometheus through a data source variable', () => {
    expect(dashboard.uid).toBe('trigsync');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(datasourceVariable).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const uid = `\${${datasourceVariable?.name}}`;
    const ids = (function all(list: Panel[]): (number | undefined)[] {
      return list.flatMap((p) => [p.id, ...all(p.panels ?? [])]);
    })(dashboard.panels ?? []);
    expect(new Set(ids).size, 'panel ids are unique').toBe(ids.length);
    for (const panel of panels) {
      const where = `panel "${panel.title}"`;
      expect(panel.title, where).toBeTruthy();
      expect(panel.datasource, where).toEqual({ type: 'prometheus', uid });
      const grid = panel.gridPos ?? { x: -1, y: -1, w: 0, h: 0 };
      expect(grid.x >= 0 && grid.w > 0 && grid.x + grid.w <= 24 && grid.h > 0, where).toBe(true);
      expect(panel.targets?.length, where).toBeGreaterThan(0);
      const refIds = (panel.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, `${where}: refIds are unique`).toBe(refIds.length);
      for (const target of panel.targets ?? []) {
        expect(target.datasource ?? panel.datasource, `${where} ${target.refId}`).toEqual(panel.datasource);
      }
    }
  });

  it('has a target variable of the targets the daemon reports', () => {
    const target = variables.find((v) => v.name === 'target');
    expect(target?.type).toBe('query');
    const { expr, label } = variablePromql(target ?? { name: '', type: '' });
    expect(label).toBe('target');
    const { names } = checkPromql(expandVariables(expr, variableNames).expr);
    for (const name of names) expect(series.get(name)?.labels.has('target'), name).toBe(true);
  });

  it('has expressions that parse and name only series the daemon exports', () => {
    expect(dashboardExpressions.length).toBeGreaterThan(0);
    for (const { where, raw, expr, unknown } of dashboardExpressions) {
      expect(unknown, `${where}: variables neither the dashboard nor Grafana defines`).toEqual([]);
      const { problems, names } = checkPromql(expr);
      expect(problems, `${where}: ${raw}`).toEqual([]);
      expect(names.length, where).toBeGreaterThan(0);
    }
  });

  it("shows every one of the daemon's own metrics, each histogram's quantiles from its buckets", () => {
    const used = new Set(
      panels.flatMap((p) =>
        (p.targets ?? []).flatMap(
          (t) => checkPromql(expandVariables(t.expr ?? '', variableNames).expr).names,
        ),
      ),
    );
    const missing = own
      .map(({ name, type }) => (type === 'histogram' ? `${name}_bucket` : name))
      .filter((name) => !used.has(name));
    expect(missing, 'metrics no panel shows').toEqual([]);
    const quantiles = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
    for (const { name } of own.filter((m) => m.type === 'histogram')) {
      expect(
        quantiles.some((e) => e.includes('histogram_quantile(') && e.includes(`${name}_bucket`)),
        name,
      ).toBe(true);
    }
  });
});

describe('docker-compose.yml', () => {
  interface Service {
    image?: string;
    volumes?: string[];
  }
  const services =
    (parse(read('docker-compose.yml')) as { services?: Record<string, Service> }).services ?? {};
  /** A service's bind mounts: container path → repository path. */
  const mounts = (name: string): Map<string, string> =>
    new Map(
      (services[name]?.volumes ?? []).flatMap((volume) => {
        const [source, target] = volume.split(':');
        return source?.startsWith('.') && target !== undefined
          ? [[target, relative(root, join(root, source))] as const]
          : [];
      }),
    );

  it('runs Prometheus with deploy/prometheus/prometheus.yml, which loads the rules file', () => {
    expect(services.prometheus?.image).toMatch(/^prom\/prometheus(:|$)/);
    const prometheus = mounts('prometheus');
    expect(prometheus.get('/etc/prometheus/prometheus.yml')).toBe('deploy/prometheus/prometheus.yml');
    const config = parse(read('deploy/prometheus/prometheus.yml')) as { rule_files?: string[] };
    const loaded = (config.rule_files ?? []).map((path) => prometheus.get(path));
    expect(loaded).toEqual([rulesFile]);
    for (const file of prometheus.values()) expect(existsSync(join(root, file)), file).toBe(true);
  });

  it('runs Grafana with the Prometheus data source and the dashboard provisioned', () => {
    expect(services.grafana?.image).toMatch(/^grafana\/grafana(:|$)/);
    const grafana = mounts('grafana');
    for (const file of grafana.values()) expect(existsSync(join(root, file)), file).toBe(true);
    const provisioned = (kind: string) =>
      [...grafana].filter(([target]) => target.startsWith(`/etc/grafana/provisioning/${kind}/`));
    const [datasources] = provisioned('datasources');
    const sources = parse(read(datasources?.[1] ?? '')) as {
      datasources?: { type?: string; url?: string }[];
    };
    expect(sources.datasources?.map((s) => [s.type, s.url])).toEqual([
      ['prometheus', 'http://prometheus:9090'],
    ]);
    const [providers] = provisioned('dashboards');
    const provider = parse(read(providers?.[1] ?? '')) as { providers?: { options?: { path?: string } }[] };
    const path = provider.providers?.[0]?.options?.path ?? '';
    expect(path).not.toBe('');
    const dashboards = [...grafana].filter(([target]) => target.startsWith(`${path}/`)).map(([, s]) => s);
    expect(dashboards).toEqual([dashboardFile]);
  });
});
