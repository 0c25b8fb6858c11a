import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  formatQualifiedName,
  ident,
  parseColumnName,
  parseQualifiedName,
  qualifiedIdent,
  type QualifiedName,
} from '../src/config/identifiers.js';
import { configFromObject, loadConfig } from '../src/config/load.js';
import { configSecrets, redactSecrets, redactUrl } from '../src/config/redact.js';
import { schemaLeaves } from '../src/config/schema.js';
import type { Config } from '../src/config/types.js';
import { ConfigError } from '../src/failure/errors.js';

const fixtures = 'test/fixtures/config';
const sourceUrl = 'postgres://trigsync:hunter2@source-db:5432/app';
const minimal = { source: { url: sourceUrl }, tables: ['public.orders'] };

/** The problems a config is rejected with; fails the test when it is accepted or throws something else. */
function problemsOf(load: () => unknown): readonly string[] {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

function rejects(raw: unknown, env: NodeJS.ProcessEnv = {}): readonly string[] {
  return problemsOf(() => configFromObject(raw, { env }));
}

function withTarget(target: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    ...minimal,
    tables: ['public.orders', 'public."Order Lines"'],
    targets: [{ name: 'reporting', url: 'postgres://u:pw@reporting-db/app', ...target }],
    ...extra,
  };
}

const tmp = mkdtempSync(join(tmpdir(), 'trigsync-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
function tmpFile(name: string, content: string): string {
  const file = join(tmp, name);
  writeFileSync(file, content);
  return file;
}

describe('identifiers', () => {
  it.each<[string, QualifiedName]>([
    ['public.orders', { schema: 'public', name: 'orders' }],
    ['orders', { schema: 'public', name: 'orders' }],
    ['Orders', { schema: 'public', name: 'orders' }],
    ['Sales.Q1', { schema: 'sales', name: 'q1' }],
    ['public."Order Lines"', { schema: 'public', name: 'Order Lines' }],
    ['"my.schema"."a""b"', { schema: 'my.schema', name: 'a"b' }],
    ['"Public".orders', { schema: 'Public', name: 'orders' }],
    ['  public.orders  ', { schema: 'public', name: 'orders' }],
    ['café.naïve', { schema: 'café', name: 'naïve' }],
    ['ÄBC', { schema: 'public', name: 'Äbc' }],
    ['"日本"."表 1"', { schema: '日本', name: '表 1' }],
    ['a$1._x', { schema: 'a$1', name: '_x' }],
  ])('parses %s', (text, expected) => {
    expect(parseQualifiedName(text)).toEqual(expected);
  });

  it('uses the default schema for a bare table', () => {
    expect(parseQualifiedName('orders', 'app')).toEqual({ schema: 'app', name: 'orders' });
  });

  it.each([
    ['', /empty name/],
    ['   ', /empty name/],
    ['public."orders', /unbalanced double quote.*position 8/],
    ['"public.orders', /unbalanced double quote.*position 1/],
    ['.orders', /empty name before "." at position 1/],
    ['public.', /empty name after "."/],
    ['a..b', /empty name before "." at position 3/],
    ['a.b.c', /too many dots at position 4/],
    ['public.or ders', /invalid character ' ' at position 10/],
    ['public.order-lines', /invalid character '-' at position 13/],
    ['1orders', /invalid character '1' at position 1/],
    ['"a"b', /invalid character 'b' at position 4/],
    ['public.""', /empty quoted name "" at position 8/],
    ['"a\0b"', /NUL/],
    ['x'.repeat(64), /too long.*64 bytes, at most 63/],
    ['"' + 'é'.repeat(32) + '"', /too long.*64 bytes/],
  ])('rejects %j', (text, message) => {
    expect(() => parseQualifiedName(text)).toThrow(message);
  });

  it('accepts a name of exactly 63 bytes', () => {
    expect(parseQualifiedName('x'.repeat(63)).name).toHaveLength(63);
    expect(parseQualifiedName('"' + 'é'.repeat(31) + '"').name).toBe('é'.repeat(31));
  });

  it('parses column names as one identifier', () => {
    expect(parseColumnName('ID')).toBe('id');
    expect(parseColumnName('"Display Name"')).toBe('Display Name');
    expect(parseColumnName('"a.b"')).toBe('a.b');
    expect(() => parseColumnName('a.b')).toThrow(/unexpected "." at position 2/);
    expect(() => parseColumnName('"x')).toThrow(/unbalanced/);
  });

  it.each<[QualifiedName, string]>([
    [{ schema: 'public', name: 'orders' }, 'public.orders'],
    [{ schema: 'public', name: 'Order Lines' }, 'public."Order Lines"'],
    [{ schema: 'my.schema', name: 'a"b' }, '"my.schema"."a""b"'],
    [{ schema: 'public', name: 'Orders' }, 'public."Orders"'],
    [{ schema: 'public', name: 'order' }, 'public."order"'],
    [{ schema: 'user', name: 'select' }, '"user"."select"'],
    [{ schema: 'app', name: 'café' }, 'app."café"'],
    [{ schema: 'app', name: 'a$1' }, 'app.a$1'],
    [{ schema: 'app', name: '1a' }, 'app."1a"'],
  ])('formats %j as %s and parses it back', (q, text) => {
    expect(formatQualifiedName(q)).toBe(text);
    expect(parseQualifiedName(text)).toEqual(q);
  });

  it('round-trips awkward names', () => {
    const names = [
      'a',
      'A',
      'a b',
      'a.b',
      '"',
      '""',
      'a""b',
      ' x ',
      'ÄÖÜ',
      '表',
      '🙂',
      'x'.repeat(63),
      'table',
    ];
    for (const schema of names) {
      for (const name of names) {
        const q = { schema, name };
        expect(parseQualifiedName(formatQualifiedName(q))).toEqual(q);
      }
    }
  });

  it('quotes identifiers for SQL', () => {
    expect(ident('orders')).toBe('"orders"');
    expect(ident('Order Lines')).toBe('"Order Lines"');
    expect(ident('a"b')).toBe('"a""b"');
    expect(ident('""')).toBe('""""""');
    expect(qualifiedIdent({ schema: 'my.schema', name: 'a"b' })).toBe('"my.schema"."a""b"');
    expect(() => ident('')).toThrow(/empty/);
    expect(() => ident('a\0b')).toThrow(/NUL/);
    expect(() => ident('x'.repeat(64))).toThrow(/64 bytes/);
  });
});

describe('redaction', () => {
  it('masks the password of a URL', () => {
    expect(redactUrl('postgres://u:hunter2@h:5432/db')).toBe('postgres://u:***@h:5432/db');
    expect(redactUrl('postgres://u@h/db')).toBe('postgres://u@h/db');
    expect(redactUrl('postgres://h/db?sslmode=require&password=hunter2')).not.toContain('hunter2');
  });

  it('masks the password of something that is not a valid URL', () => {
    for (const url of [
      'postgres://u:hun/ter@2@h:99999/db',
      'u:hunter2@h',
      'host=h password=hunter2 user=u',
    ]) {
      const redacted = redactUrl(url);
      expect(redacted).not.toMatch(/hun|ter2/);
      expect(redacted).toContain('***');
    }
  });

  it('masks known secrets in any text', () => {
    expect(redactSecrets('auth failed for hunter2 and hunter22', ['hunter2', 'hunter22', ''])).toBe(
      'auth failed for *** and ***',
    );
    const config = loadConfig({ file: `${fixtures}/full.yaml`, env: {} });
    expect(configSecrets(config)).toEqual(expect.arrayContaining(['source-secret', 'reporting-secret']));
  });
});

describe('loading a file', () => {
  it('reads YAML and JSON to the same config', () => {
    const fromYaml = loadConfig({ file: `${fixtures}/full.yaml`, env: {} });
    const fromJson = loadConfig({ file: `${fixtures}/full.json`, env: {} });
    expect(fromYaml.file).toBe(`${fixtures}/full.yaml`);
    expect({ ...fromYaml, file: undefined }).toEqual({ ...fromJson, file: undefined });
    expect(fromYaml.tables).toEqual([
      { schema: 'public', name: 'orders' },
      { schema: 'public', name: 'Order Lines' },
      { schema: 'public', name: 'customers' },
      { schema: 'Sales', name: 'Q1.results' },
    ]);
    const [reporting, mirror] = fromYaml.targets;
    expect(reporting?.tables).toEqual([
      {
        source: { schema: 'public', name: 'orders' },
        target: { schema: 'archive', name: 'orders' },
        columns: ['id', 'total', 'status'],
        where: "status <> 'draft'",
      },
      {
        source: { schema: 'public', name: 'Order Lines' },
        target: { schema: 'public', name: 'Order Lines' },
      },
      {
        source: { schema: 'public', name: 'customers' },
        target: { schema: 'public', name: 'customers' },
        columns: ['id', 'Display Name'],
      },
    ]);
    // Defaults, and every captured table when a target lists none.
    expect(mirror).toMatchObject({ readOnly: false, initialSync: 'copy', conflict: 'park' });
    expect(mirror?.tables.map((m) => m.target)).toEqual(fromYaml.tables);
  });

  it('loads the example config', () => {
    const config = loadConfig({ file: 'config/trigsync.example.yaml', env: {} });
    expect(config.targets.length).toBeGreaterThan(0);
  });

  it('names an unknown top-level key with its file and line', () => {
    const problems = problemsOf(() => loadConfig({ file: `${fixtures}/bad.yaml`, env: {} }));
    expect(problems).toContain(`${fixtures}/bad.yaml:3: sorce: unknown key (did you mean "source"?)`);
    expect(problems.join('\n')).not.toContain('secret');
  });

  it('gives the line of a problem in a JSON file', () => {
    const file = tmpFile('lines.json', JSON.stringify({ ...minimal, metrics: { port: 70000 } }, null, 2));
    expect(problemsOf(() => loadConfig({ file, env: {} }))).toEqual([
      `${file}:9: metrics.port: must be an integer from 0 to 65535, got 70000`,
    ]);
  });

  it('says how to name a file when none is given', () => {
    expect(problemsOf(() => loadConfig({ env: {} }))[0]).toMatch(/--config PATH or set TRIGSYNC_CONFIG/);
  });

  it('takes the file from TRIGSYNC_CONFIG', () => {
    const config = loadConfig({ env: { TRIGSYNC_CONFIG: `${fixtures}/full.json` } });
    expect(config.file).toBe(`${fixtures}/full.json`);
    const problems = problemsOf(() => loadConfig({ env: { TRIGSYNC_CONFIG: join(tmp, 'nope.yaml') } }));
    expect(problems[0]).toMatch(
      /nope\.yaml: cannot read the configuration file \(named by TRIGSYNC_CONFIG\): no such file/,
    );
  });

  it('reports a missing file and a directory', () => {
    expect(problemsOf(() => loadConfig({ file: join(tmp, 'missing.yaml'), env: {} }))[0]).toMatch(
      /no such file/,
    );
    expect(problemsOf(() => loadConfig({ file: tmp, env: {} }))[0]).toMatch(/is a directory/);
  });

  it('reports YAML syntax errors with their line, without quoting the file', () => {
    const file = tmpFile('broken.yaml', `tables:\n  - public.orders\nsource:\n  url: ${sourceUrl}: x\n`);
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    expect(problems[0]).toMatch(new RegExp(`^${file}:4:\\d+: YAML syntax error: `));
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('reports JSON syntax errors without quoting the file', () => {
    const file = tmpFile('broken.json', `{"source": {"url": "${sourceUrl}"},\n "tables": [}`);
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    expect(problems[0]).toMatch(/broken\.json:2:13: JSON syntax error: /);
    expect(problems.join('\n')).not.toContain('hunter2');
    // Valid YAML though not JSON: said so, with the way to read it as YAML.
    const yamlish = tmpFile('yamlish.json', `{'source': {'url': '${sourceUrl}'}, 'tables': [],}`);
    expect(problemsOf(() => loadConfig({ file: yamlish, env: {} }))).toEqual([
      `${yamlish}: JSON syntax error: not JSON, though valid YAML (single quotes, a comment or a comma ` +
        'before a closing bracket, say); name the file .yaml to read it as YAML',
    ]);
  });

  it('reports a key given twice in a JSON file', () => {
    const file = tmpFile(
      'twice.json',
      `{"tables": ["a"],\n "tables": ["b"], "source": {"url": "${sourceUrl}"}}`,
    );
    expect(problemsOf(() => loadConfig({ file, env: {} }))).toEqual([
      `${file}:2: a key is given twice in one object`,
    ]);
  });

  it('reads a file without a known extension as JSON, else YAML', () => {
    const json = tmpFile('config.conf', JSON.stringify(minimal));
    const yaml = tmpFile('config.txt', `source:\n  url: ${sourceUrl}\ntables: [public.orders]\n`);
    expect(loadConfig({ file: json, env: {} }).tables).toEqual([{ schema: 'public', name: 'orders' }]);
    expect(loadConfig({ file: yaml, env: {} }).tables).toEqual([{ schema: 'public', name: 'orders' }]);
  });

  it('rejects an empty file and a file that is not a mapping', () => {
    expect(problemsOf(() => loadConfig({ file: tmpFile('empty.yaml', ''), env: {} }))[0]).toMatch(/is empty/);
    const list = tmpFile('list.yaml', '- a\n- b\n');
    expect(problemsOf(() => loadConfig({ file: list, env: {} }))[0]).toMatch(/must be a mapping/);
  });
});

describe('validation', () => {
  it('fills in every default', () => {
    const config = configFromObject(minimal, { env: {} });
    expect(config).toEqual<Config>({
      source: { url: sourceUrl },
      schema: 'trigsync',
      group: 'default',
      applicationName: 'trigsync',
      tables: [{ schema: 'public', name: 'orders' }],
      targets: [],
      sequences: [],
      apply: { batchSize: 5000, batchBytes: 16777216, pollIntervalMs: 1000, silenceTimeoutMs: 60000 },
      retry: { initialDelayMs: 500, maxDelayMs: 30000, dataErrorDelayMs: 30000 },
      shutdownTimeoutMs: 30000,
      leaderTimeoutMs: 6000,
      metrics: { enabled: true, host: '0.0.0.0', port: 9753 },
      log: { level: 'info' },
    });
  });

  it('names unknown keys at any depth', () => {
    const problems = rejects({
      ...withTarget({ extra: 1, tables: [{ source: 'public.orders', colums: ['id'] }] }),
      metrics: { prot: 1 },
      logging: { level: 'info' },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'targets[0].extra: unknown key',
        'targets[0].tables[0].colums: unknown key (did you mean "columns"?)',
        'metrics.prot: unknown key (did you mean "port"?)',
        'logging: unknown key',
      ]),
    );
    expect(problems).toHaveLength(4);
  });

  it('names keys that are never read, even those convict skips', () => {
    const problems = rejects({
      ...JSON.parse('{"__proto__": {"x": 1}, "source": {"url": "postgres://h/db", "__proto__": 1}}'),
      tables: ['t'],
      constructor: { prototype: 1 },
      'metrics.port': 1,
    });
    expect(problems).toEqual([
      '__proto__: unknown key',
      'source.__proto__: unknown key',
      'constructor: unknown key',
      '["metrics.port"]: unknown key',
    ]);
  });

  it('rejects any document with a ConfigError and nothing else', () => {
    // Keys of every level of the schema, and some it lacks, so that values land where a mapping belongs,
    // mappings where a value belongs, and unknown keys at any depth.
    const keys = [
      ...['source', 'url', 'schema', 'group', 'tables', 'targets', 'sequences', 'apply', 'batchSize'],
      ...['metrics', 'port', 'enabled', 'log', 'level', 'retry', 'name', 'sorce', '__proto__'],
      ...['constructor', 'prototype', 'metrics.port'],
    ];
    const document = fc.object({
      key: fc.constantFrom(...keys),
      values: [fc.constantFrom(null, true, 0, 70_000, 1.5, '', 'x', 'public.orders', sourceUrl)],
      maxDepth: 3,
      maxKeys: 5,
    });
    const env = fc.record(
      { TRIGSYNC_METRICS_PORT: fc.constantFrom('80', '80x'), TRIGSYNC_SOURCE_URL: fc.constant(sourceUrl) },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.boolean(), document, env, (complete, raw, env) => {
        try {
          configFromObject(complete ? { ...minimal, ...raw } : raw, { env });
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('requires the source URL', () => {
    expect(rejects({ tables: ['t'] })).toEqual([
      'source.url: missing: give the URL of the source database here or in TRIGSYNC_SOURCE_URL',
    ]);
    expect(rejects({ source: {}, tables: ['t'] })[0]).toMatch(/^source\.url: missing/);
    expect(rejects({ source: sourceUrl, tables: ['t'] })).toEqual([
      'source: must be a mapping with keys url',
      'source.url: missing: give the URL of the source database here or in TRIGSYNC_SOURCE_URL',
    ]);
  });

  it.each([
    'mysql://u:hunter2@h/db',
    'postgres://u:hunter2@h:99999/db',
    'postgres://u:hunter2@h:port/db',
    'u:hunter2@h/db',
    'host=h password=hunter2',
  ])('rejects the URL %s without showing its password', (url) => {
    const problems = [...rejects({ ...minimal, source: { url } }), ...rejects(withTarget({ url }))];
    expect(problems.some((p) => p.startsWith('source.url: '))).toBe(true);
    expect(problems.some((p) => p.startsWith('targets[0].url: '))).toBe(true);
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('accepts the URL forms node-postgres accepts', () => {
    for (const url of [
      'postgresql://h/db',
      'postgres://u:p%40ss@h:5432/db?sslmode=require',
      'postgres:///db?host=/var/run/postgresql',
      'postgres://u:pw@/db',
      'postgres://[::1]:5432/db',
    ]) {
      expect(configFromObject({ ...minimal, source: { url } }, { env: {} }).source.url).toBe(url);
    }
  });

  it('checks target names', () => {
    for (const name of ['Reporting', '1abc', 'a-b', 'x'.repeat(64), 42, '']) {
      expect(rejects(withTarget({ name }))[0]).toMatch(/^targets\[0\]\.name: .*must be a lower-case letter/);
    }
    expect(rejects(withTarget({ name: undefined }))).toEqual([
      'targets[0].name: missing: a name such as reporting',
    ]);
    const twice = withTarget({});
    twice.targets.push({ name: 'reporting', url: 'postgres://h/x' });
    expect(rejects(twice)).toEqual(['targets[1].name: "reporting" is already the name of targets[0]']);
  });

  it('checks readOnly, initialSync and conflict', () => {
    expect(rejects(withTarget({ readOnly: 'yes', initialSync: 'full', conflict: 'overwrite' }))).toEqual([
      'targets[0].readOnly: must be true or false, got "yes"',
      'targets[0].initialSync: must be one of copy, none, got "full"',
      'targets[0].conflict: must be one of apply, skip, park, got "overwrite"',
    ]);
    const target = configFromObject(withTarget({ readOnly: true, initialSync: 'none', conflict: 'skip' }), {
      env: {},
    }).targets[0];
    expect(target).toMatchObject({ readOnly: true, initialSync: 'none', conflict: 'skip' });
  });

  it('reads guardRole as a role name, only on a read-only target', () => {
    const guarded = (guardRole: unknown, readOnly: unknown = true) => withTarget({ readOnly, guardRole });
    const targetOf = (raw: unknown) => configFromObject(raw, { env: {} }).targets[0];
    expect(targetOf(guarded('TrigSync_Apply'))).toMatchObject({
      readOnly: true,
      guardRole: 'trigsync_apply',
    });
    expect(targetOf(guarded('"Apply Role"'))?.guardRole).toBe('Apply Role');
    expect(targetOf(withTarget({ readOnly: true }))).not.toHaveProperty('guardRole');
    expect(rejects(guarded('trigsync_apply', false))).toEqual([
      'targets[0].guardRole: applies only to a read-only target: set readOnly: true, or leave guardRole out',
    ]);
    expect(rejects(withTarget({ guardRole: 'trigsync_apply' }))).toEqual([
      'targets[0].guardRole: applies only to a read-only target: set readOnly: true, or leave guardRole out',
    ]);
    // A bad readOnly is reported once, on its own key.
    expect(rejects(guarded('trigsync_apply', 'yes'))).toEqual([
      'targets[0].readOnly: must be true or false, got "yes"',
    ]);
    expect(rejects(guarded(42))).toEqual(['targets[0].guardRole: must be a role name, got 42']);
    expect(rejects(guarded('a b'))[0]).toMatch(/^targets\[0\]\.guardRole: "a b": invalid character ' '/);
    expect(rejects(guarded('pg_monitor'))).toEqual([
      'targets[0].guardRole: "pg_monitor": names starting with pg_ are reserved by PostgreSQL',
    ]);
  });

  it('shows the reason a table name is malformed', () => {
    const problems = rejects({
      ...minimal,
      tables: ['public.orders', 'public."Order Lines', 'a.b.c', 42, ''],
    });
    expect(problems).toEqual([
      'tables[1]: "public.\\"Order Lines": unbalanced double quote: the quote at position 8 is not closed',
      'tables[2]: "a.b.c": too many dots at position 4: expected table or schema.table (double-quote a name that contains a dot)',
      'tables[3]: must be a table name such as public.orders, got 42',
      'tables[4]: "": empty name',
    ]);
  });

  it('requires captured tables, once each, outside trigsync’s schema', () => {
    expect(rejects({ source: { url: sourceUrl } })).toEqual([
      'tables: must list at least one table to capture, such as public.orders',
    ]);
    expect(rejects({ ...minimal, tables: 'public.orders' })).toEqual([
      'tables: must be a list, got "public.orders"',
    ]);
    expect(rejects({ ...minimal, tables: ['Orders', 'public.orders', 'trigsync.change_log'] })).toEqual([
      'tables[1]: public.orders is listed twice (also tables[0])',
      'tables[2]: trigsync.change_log is in trigsync\'s own schema "trigsync"',
    ]);
  });

  it('checks target table mappings', () => {
    const problems = rejects(
      withTarget({
        tables: [
          { source: 'public.customers' },
          { source: 'public.orders', target: 'archive."x' },
          { target: 'archive.orders' },
          { source: 'public.orders', where: '' },
          { source: 'public.orders', where: 42 },
          7,
        ],
      }),
    );
    expect(problems).toEqual([
      'targets[0].tables[0].source: public.customers is not a captured table: add it to tables',
      'targets[0].tables[1].target: "archive.\\"x": unbalanced double quote: the quote at position 9 is not closed',
      'targets[0].tables[2].source: missing: the captured table to replicate',
      'targets[0].tables[3].where: must be a non-empty string, got "" (an SQL condition over source columns)',
      'targets[0].tables[4].where: must be a non-empty string, got 42 (an SQL condition over source columns)',
      'targets[0].tables[5]: must be a table name or a mapping with source, got 7',
    ]);
    expect(rejects(withTarget({ tables: [] }))[0]).toMatch(/^targets\[0\]\.tables: must not be empty/);
    expect(rejects(withTarget({ tables: 'public.orders' }))[0]).toMatch(
      /^targets\[0\]\.tables: must be a list/,
    );
  });

  it('rejects two mappings onto one target table', () => {
    const problems = rejects(
      withTarget({ tables: ['public.orders', { source: 'public."Order Lines"', target: 'orders' }] }),
    );
    expect(problems).toEqual([
      'targets[0].tables[1].target: public.orders is already the target table of targets[0].tables[0]',
    ]);
  });

  it('checks column lists', () => {
    const mapping = (columns: unknown) => withTarget({ tables: [{ source: 'public.orders', columns }] });
    expect(rejects(mapping('id, total'))[0]).toBe(
      'targets[0].tables[0].columns: must be a non-empty list of column names (leave it out for all columns), got "id, total"',
    );
    expect(rejects(mapping([]))[0]).toMatch(/^targets\[0\]\.tables\[0\]\.columns: .*got an empty list/);
    expect(rejects(mapping(['id', 'bad name', 3, 'ID']))).toEqual([
      'targets[0].tables[0].columns[1]: "bad name": invalid character \' \' at position 4 (a name with characters other than letters, digits, _ and $ must be double-quoted)',
      'targets[0].tables[0].columns[2]: must be a column name, got 3',
      'targets[0].tables[0].columns[3]: column "id" is listed twice (also targets[0].tables[0].columns[0])',
    ]);
    const config = configFromObject(mapping(['id', '"Total Amount"']), { env: {} });
    expect(config.targets[0]?.tables[0]?.columns).toEqual(['id', 'Total Amount']);
  });

  it('checks numbers, schema and application name', () => {
    const problems = rejects({
      ...minimal,
      schema: 'pg_sync',
      applicationName: 'trigsync-ä',
      apply: { batchSize: 0, batchBytes: 512 * 1024 * 1024, pollIntervalMs: 1.5 },
      retry: { initialDelayMs: 1000, maxDelayMs: 500 },
      metrics: { port: 70000, enabled: 'no' },
      log: { level: 'verbose' },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'schema: "pg_sync": names starting with pg_ are reserved by PostgreSQL',
        'applicationName: "trigsync-ä": only printable ASCII characters, as PostgreSQL replaces the others',
        'apply.batchSize: must be an integer from 1 to 100000, got 0',
        'apply.batchBytes: must be an integer from 1 to 268435456, got 536870912',
        'apply.pollIntervalMs: must be an integer from 10 to 3600000, got 1.5',
        'retry.maxDelayMs: 500 is less than retry.initialDelayMs (1000)',
        'metrics.port: must be an integer from 0 to 65535, got 70000',
        'metrics.enabled: must be true or false, got "no"',
        'log.level: must be one of trace, debug, info, warn, error, fatal, silent, got "verbose"',
      ]),
    );
    expect(problems).toHaveLength(9);
    expect(rejects({ ...minimal, applicationName: 'x'.repeat(64) })[0]).toMatch(/64 characters, at most 63/);
    expect(rejects({ ...minimal, schema: 'a.b' })[0]).toMatch(/^schema: "a.b": unexpected "."/);
    expect(configFromObject({ ...minimal, schema: '"Sync"' }, { env: {} }).schema).toBe('Sync');
  });

  it('checks the group name like a target name, and takes it from TRIGSYNC_GROUP', () => {
    expect(configFromObject({ ...minimal, group: 'eu_west' }, { env: {} }).group).toBe('eu_west');
    const message =
      'must be a lower-case letter followed by lower-case letters, digits or _, at most 63 characters';
    expect(rejects({ ...minimal, group: 'EU' })).toEqual([`group: "EU": ${message}`]);
    expect(rejects({ ...minimal, group: 'eu-west' })).toEqual([`group: "eu-west": ${message}`]);
    expect(rejects({ ...minimal, group: 7 })).toEqual([`group: 7: ${message}`]);
    expect(configFromObject(minimal, { env: { TRIGSYNC_GROUP: 'us' } }).group).toBe('us');
    expect(rejects(minimal, { TRIGSYNC_GROUP: 'U S' })[0]).toContain('TRIGSYNC_GROUP');
  });

  it('rejects a mapping where a value belongs, and the reverse', () => {
    expect(rejects({ ...minimal, schema: { name: 'x' }, metrics: 9753, log: ['info'] })).toEqual([
      'schema: must be a name, got a mapping',
      'metrics: must be a mapping with keys enabled, host, port',
      'log: must be a mapping with keys level',
    ]);
  });
});

describe('environment', () => {
  const file = `${fixtures}/full.yaml`;

  it('takes the source URL and a target URL from the environment, over the file', () => {
    const env = {
      TRIGSYNC_SOURCE_URL: 'postgres://env@source/app',
      TRIGSYNC_TARGET_REPORTING_URL: 'postgres://env@reporting/app',
      TRIGSYNC_SCHEMA: 'sync',
      TRIGSYNC_APPLICATION_NAME: 'trigsync_b',
      TRIGSYNC_LOG_LEVEL: 'warn',
      TRIGSYNC_METRICS_HOST: '::',
      TRIGSYNC_METRICS_PORT: '9900',
    };
    const config = loadConfig({ file, env });
    expect(config.source.url).toBe(env.TRIGSYNC_SOURCE_URL);
    expect(config.targets.map((t) => t.url)).toEqual([
      env.TRIGSYNC_TARGET_REPORTING_URL,
      'postgresql://trigsync@mirror-db/app?sslmode=require',
    ]);
    expect(config).toMatchObject({
      schema: 'sync',
      applicationName: 'trigsync_b',
      log: { level: 'warn' },
      metrics: { host: '::', port: 9900 },
    });
  });

  it('lets the file leave out URLs given in the environment', () => {
    const raw = { tables: ['public.orders'], targets: [{ name: 'reporting' }] };
    const config = configFromObject(raw, {
      env: { TRIGSYNC_SOURCE_URL: sourceUrl, TRIGSYNC_TARGET_REPORTING_URL: 'postgres://r/app' },
    });
    expect(config.source.url).toBe(sourceUrl);
    expect(config.targets[0]?.url).toBe('postgres://r/app');
    expect(rejects(raw, { TRIGSYNC_SOURCE_URL: sourceUrl })).toEqual([
      'targets[0].url: missing: give the URL of the target database here or in TRIGSYNC_TARGET_REPORTING_URL',
    ]);
  });

  it('ignores empty variables', () => {
    const config = loadConfig({ file, env: { TRIGSYNC_SOURCE_URL: '', TRIGSYNC_METRICS_PORT: '' } });
    expect(config.source.url).toBe('postgres://trigsync:source-secret@source-db:5432/app');
    expect(config.metrics.port).toBe(9800);
  });

  it('names the variable a bad value came from', () => {
    const problems = problemsOf(() =>
      loadConfig({
        file,
        env: {
          TRIGSYNC_METRICS_PORT: '80x',
          TRIGSYNC_SOURCE_URL: 'mysql://u:hunter2@h/db',
          TRIGSYNC_TARGET_REPORTING_URL: 'http://u:hunter2@h/',
        },
      }),
    );
    expect(problems).toEqual([
      `${file}: source.url (from TRIGSYNC_SOURCE_URL): must start with postgres:// or postgresql://, got "mysql://u:***@h/db"`,
      `${file}: metrics.port (from TRIGSYNC_METRICS_PORT): must be an integer from 0 to 65535, got "80x"`,
      `${file}: targets[0].url (from TRIGSYNC_TARGET_REPORTING_URL): must start with postgres:// or postgresql://, got "http://u:***@h/"`,
    ]);
  });
});

describe('documentation', () => {
  const docs = readFileSync('docs/configuration.md', 'utf8');
  const example = readFileSync('config/trigsync.example.yaml', 'utf8');

  it('documents every key and environment variable', () => {
    for (const [path, leaf] of schemaLeaves()) {
      expect(docs).toContain(`\`${path.join('.')}\``);
      if (typeof leaf.env === 'string') expect(docs).toContain(leaf.env);
    }
    for (const key of [
      'name',
      'url',
      'readOnly',
      'guardRole',
      'initialSync',
      'conflict',
      'source',
      'target',
      'columns',
      'where',
    ]) {
      expect(docs).toContain(`\`${key}\``);
    }
    expect(docs).toContain('TRIGSYNC_TARGET_<NAME>_URL');
    expect(docs).toContain('TRIGSYNC_CONFIG');
  });

  it('shows every key in the example', () => {
    for (const [path] of schemaLeaves())
      expect(example).toMatch(new RegExp(`^\\s*#?\\s*${path.at(-1)}:`, 'm'));
  });
});
