// The deployment files: Dockerfile and docker-compose.yml. No Docker engine runs where the tests do, so
// this reads them: the compose services and what they mount, the trigsync config the compose file mounts
// (validated by trigsync's own loader with the environment compose gives it), the init SQL the config
// relies on, Prometheus' scrape target, and the Dockerfile's stages. No database needed.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { formatQualifiedName, parseColumnName, parseQualifiedName } from '../../src/config/identifiers.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config, QualifiedName } from '../../src/config/types.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const isFile = (path: string): boolean => existsSync(join(root, path)) && statSync(join(root, path)).isFile();

// ---- docker-compose.yml ----

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  environment?: Record<string, string | number | null> | string[];
  volumes?: (string | { source?: string; target?: string })[];
  healthcheck?: { test?: string | string[] };
  depends_on?: string[] | Record<string, { condition?: string }>;
  ports?: (string | number | { target?: number; published?: string | number })[];
  profiles?: string[];
}

const compose = parse(read('docker-compose.yml')) as { services?: Record<string, Service> };
const services = compose.services ?? {};
const service = (name: string): Service => services[name] ?? expect.unreachable(`no service ${name}`);

function environmentOf(s: Service): Record<string, string> {
  const env: Record<string, string> = {};
  if (Array.isArray(s.environment)) {
    for (const entry of s.environment) {
      const at = entry.indexOf('=');
      if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
    }
  } else {
    for (const [key, value] of Object.entries(s.environment ?? {})) {
      if (value !== null) env[key] = String(value);
    }
  }
  return env;
}

/** Bind mounts as repository path (relative to the compose file) and container path. */
function mountsOf(s: Service): { source: string; target: string }[] {
  return (s.volumes ?? []).flatMap((volume) => {
    const [source, target] = typeof volume === 'string' ? volume.split(':') : [volume.source, volume.target];
    return source?.startsWith('.') && target !== undefined
      ? [{ source: relative(root, join(root, source)), target }]
      : [];
  });
}

/** The repository file mounted at a container path. */
function mountedAt(s: Service, target: string): string | undefined {
  return mountsOf(s).find((m) => m.target === target)?.source;
}

/** Init files mounted into /docker-entrypoint-initdb.d, in the order the entrypoint runs them. */
function initFiles(s: Service): { source: string; target: string }[] {
  return mountsOf(s)
    .filter((m) => m.target.startsWith('/docker-entrypoint-initdb.d/'))
    .sort((a, b) => (a.target < b.target ? -1 : 1));
}

/** Container port → host port of each port mapping. */
function portsOf(s: Service): Map<number, string> {
  const ports = new Map<number, string>();
  for (const port of s.ports ?? []) {
    if (typeof port === 'object') {
      if (port.target !== undefined) ports.set(port.target, String(port.published ?? ''));
    } else {
      const parts = String(port).split(':');
      ports.set(Number(parts.at(-1)), parts.at(-2) ?? '');
    }
  }
  return ports;
}

const databases = Object.entries(services).filter(([, s]) => /^postgres(:|$)/.test(s.image ?? ''));
const trigsync = service('trigsync');
const trigsyncEnv = environmentOf(trigsync);

// ---- init SQL ----

/** The tables `create table` makes in some SQL, with their column names. */
function createdTables(sql: string): { table: QualifiedName; columns: string[] }[] {
  const tables: { table: QualifiedName; columns: string[] }[] = [];
  for (const match of sql.matchAll(/create\s+table\s+(?:if\s+not\s+exists\s+)?([^(]+?)\s*\(/gi)) {
    let depth = 1;
    let end = match.index + match[0].length;
    for (; depth > 0 && end < sql.length; end++) depth += sql[end] === '(' ? 1 : sql[end] === ')' ? -1 : 0;
    const items: string[] = [''];
    depth = 0;
    for (const char of sql.slice(match.index + match[0].length, end - 1)) {
      depth += char === '(' ? 1 : char === ')' ? -1 : 0;
      if (char === ',' && depth === 0) items.push('');
      else items[items.length - 1] += char;
    }
    const columns = items
      .map((item) => item.trim())
      .filter((item) => !/^(primary\s+key|constraint|unique|check|foreign\s+key|exclude)\b/i.test(item))
      .map((item) => parseColumnName(/^("(?:[^"]|"")*"|\S+)/.exec(item)?.[1] ?? ''));
    tables.push({ table: parseQualifiedName(match[1] ?? ''), columns });
  }
  return tables;
}

/** The init SQL of a compose service, its files concatenated in the order they run. */
const initSql = (name: string): string =>
  initFiles(service(name))
    .map((m) => read(m.source))
    .join('\n');

// ---- Dockerfile ----

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions per stage, comments dropped and continuation lines joined. */
function dockerStages(text: string): Instruction[][] {
  const stages: Instruction[][] = [];
  const lines = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n');
  for (const line of lines) {
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (match === null) continue;
    const instruction = { keyword: (match[1] ?? '').toUpperCase(), args: (match[2] ?? '').trim() };
    if (instruction.keyword === 'FROM') stages.push([]);
    stages.at(-1)?.push(instruction);
  }
  return stages;
}

const stages = dockerStages(read('Dockerfile'));
const finalStage = stages.at(-1) ?? [];
const buildStages = stages.slice(0, -1);
const args = (stage: Instruction[], keyword: string): string[] =>
  stage.filter((i) => i.keyword === keyword).map((i) => i.args);
/** The image's environment, `ENV KEY=value ...`, where compose does not set the variable. */
const imageEnv = Object.fromEntries(
  args(finalStage, 'ENV').flatMap((a) =>
    a.split(/\s+/).map((word) => word.split('=', 2) as [string, string]),
  ),
);
const configInContainer =
  trigsyncEnv.TRIGSYNC_CONFIG ?? imageEnv.TRIGSYNC_CONFIG ?? '(TRIGSYNC_CONFIG unset)';
const configFile = mountedAt(trigsync, configInContainer);

/** The healthcheck's port: a literal, or the default of a `process.env.X || port` expression. */
const healthcheck = args(finalStage, 'HEALTHCHECK').at(-1) ?? '';
const healthcheckPort = Number(/(?::|\|\|\s*)(\d+)\)?['"+)\s]*\/healthz/.exec(healthcheck)?.[1]);

/** .dockerignore as a test: is this path (relative to the context) left out of the build context? */
function dockerIgnored(path: string): boolean {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  // Go's filepath.Match plus `**`, as Docker reads the patterns.
  const glob: Record<string, string> = { '**/': '(?:.*/)?', '**': '.*', '*': '[^/]*', '?': '[^/]' };
  const toRegExp = (pattern: string): RegExp =>
    new RegExp(
      `^${pattern
        .replace(/^\/+|\/+$/g, '')
        .replace(/\*\*\/|\*\*|[*?]|[.+^${}()|[\]\\]/g, (token) => glob[token] ?? `\\${token}`)}$`,
    );
  const parts = path.split('/');
  let ignored = false;
  // Docker excludes a path when it or a parent directory matches; the last matching pattern wins.
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const regExp = toRegExp(negated ? pattern.slice(1) : pattern);
    if (parts.some((_, i) => regExp.test(parts.slice(0, i + 1).join('/')))) ignored = !negated;
  }
  return ignored;
}

/** Every file under a path of the repository (the path itself when a file). */
function filesUnder(path: string): string[] {
  if (!statSync(join(root, path)).isDirectory()) return [path];
  return readdirSync(join(root, path)).flatMap((entry) => filesUnder(`${path}/${entry}`));
}

// ---- the tests ----

describe('docker-compose.yml', () => {
  it('has a source and two targets, PostgreSQL with a TCP healthcheck and init SQL from the repository', () => {
    expect(databases.map(([name]) => name).sort()).toEqual(['archive', 'reporting', 'source']);
    for (const [name, s] of databases) {
      const env = environmentOf(s);
      expect(env.POSTGRES_USER, name).toBeTruthy();
      expect(env.POSTGRES_DB, name).toBeTruthy();
      // Over TCP: during the init SQL the entrypoint's temporary server listens on the socket only.
      const test = [s.healthcheck?.test ?? []].flat().join(' ');
      expect(test, name).toMatch(/pg_isready\b.*-h\s*(127\.0\.0\.1|localhost)\b/);
      const init = initFiles(s);
      expect(init.length, name).toBeGreaterThan(0);
      for (const file of init) {
        expect(file.target, name).toMatch(/\.(sql|sh)$/);
        expect(isFile(file.source), `${name}: ${file.source}`).toBe(true);
      }
    }
  });

  it('builds trigsync from the Dockerfile, starts it once the databases are healthy, mounts its config', () => {
    const build = typeof trigsync.build === 'string' ? { context: trigsync.build } : (trigsync.build ?? {});
    expect(build.context ?? '.').toBe('.');
    expect(build.dockerfile ?? 'Dockerfile').toBe('Dockerfile');
    expect(isFile('Dockerfile')).toBe(true);
    const dependsOn = trigsync.depends_on ?? {};
    expect(Array.isArray(dependsOn)).toBe(false);
    for (const [name] of databases) {
      expect((dependsOn as Record<string, { condition?: string }>)[name]?.condition, name).toBe(
        'service_healthy',
      );
    }
    expect(configFile, `a file mounted at ${configInContainer}`).toBeDefined();
    expect(isFile(configFile ?? '')).toBe(true);
  });

  it('runs Prometheus by default, scraping trigsync at its metrics port', () => {
    const prometheus = service('prometheus');
    expect(prometheus.image).toMatch(/^prom\/prometheus(:|$)/);
    // The issue lists Prometheus as part of the compose: `docker compose up` starts it.
    expect(prometheus.profiles ?? []).toEqual([]);
    const file = mountedAt(prometheus, '/etc/prometheus/prometheus.yml');
    expect(file).toBeDefined();
    const scrape = parse(read(file ?? '')) as {
      scrape_configs?: { metrics_path?: string; static_configs?: { targets?: string[] }[] }[];
    };
    const port = loadComposeConfig().metrics.port;
    const jobs = (scrape.scrape_configs ?? []).filter((job) =>
      (job.static_configs ?? []).some((c) => (c.targets ?? []).includes(`trigsync:${port}`)),
    );
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.metrics_path ?? '/metrics').toBe('/metrics');
  });
});

/** The config the compose file mounts, as trigsync loads it in the container. */
function loadComposeConfig(): Config {
  return loadConfig({ file: join(root, configFile ?? 'missing'), env: trigsyncEnv });
}

describe('the trigsync config compose mounts', () => {
  it('validates with the environment compose gives the service, which holds the passwords', () => {
    expect(() => loadComposeConfig()).not.toThrow();
    expect(read(configFile ?? '')).not.toMatch(/:\/\/[^/\s@]*:[^/\s@]*@/);
  });

  const urls = (config: Config) => [
    { name: 'source', url: config.source.url },
    ...config.targets.map((t) => ({ name: `target ${t.name}`, url: t.url })),
  ];

  it('connects to the source and each target by service name, each a different PostgreSQL service', () => {
    const config = loadComposeConfig();
    expect(config.targets).toHaveLength(2);
    const hosts = urls(config).map(({ url }) => new URL(url).hostname);
    expect(new Set(hosts).size).toBe(3);
    for (const { name, url } of urls(config)) {
      const parsed = new URL(url);
      expect(
        databases.map(([db]) => db),
        name,
      ).toContain(parsed.hostname);
      expect(parsed.port || '5432', name).toBe('5432');
      expect(parsed.pathname.slice(1), name).toBe(environmentOf(service(parsed.hostname)).POSTGRES_DB);
    }
  });

  it("connects as a role the init SQL creates, without superuser, not as the image's POSTGRES_USER", () => {
    for (const { name, url } of urls(loadComposeConfig())) {
      const parsed = new URL(url);
      const env = environmentOf(service(parsed.hostname));
      const user = decodeURIComponent(parsed.username);
      expect(user, name).not.toBe('');
      expect(user, `${name}: POSTGRES_USER is a superuser`).not.toBe(env.POSTGRES_USER);
      const sql = initSql(parsed.hostname);
      const quoted = user.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const role = new RegExp(`create\\s+(?:role|user)\\s+"?${quoted}"?\\s([^;]*);`, 'i').exec(sql);
      expect(role, `${name}: create role ${user}`).not.toBeNull();
      expect(role?.[1], name).not.toMatch(/(?<!no)superuser/i);
      // The password: a literal, or a psql variable read by \getenv from the service's environment.
      const given = /password\s+(?:'([^']*)'|:'(\w+)')/i.exec(role?.[1] ?? '');
      const variable = given?.[2];
      const fromEnv =
        variable === undefined ? undefined : new RegExp(`\\\\getenv\\s+${variable}\\s+(\\w+)`).exec(sql)?.[1];
      const password = variable === undefined ? given?.[1] : fromEnv === undefined ? undefined : env[fromEnv];
      expect(password, `${name}: the password of ${user}`).toBe(decodeURIComponent(parsed.password));
    }
  });

  it('captures tables the source creates and replicates them to tables and columns each target has', () => {
    const config = loadComposeConfig();
    const show = (t: { table: QualifiedName; columns: string[] }) =>
      `${formatQualifiedName(t.table)} (${t.columns.join(', ')})`;
    const tablesOf = (url: string) => createdTables(initSql(new URL(url).hostname));
    const find = (url: string, name: QualifiedName) =>
      tablesOf(url).find((t) => formatQualifiedName(t.table) === formatQualifiedName(name));
    for (const table of config.tables) {
      expect(find(config.source.url, table), formatQualifiedName(table)).toBeDefined();
    }
    for (const target of config.targets) {
      for (const mapping of target.tables) {
        const source = find(config.source.url, mapping.source);
        const created = find(target.url, mapping.target);
        const where = `${target.name}: ${formatQualifiedName(mapping.target)}`;
        expect(created, `${where}; it creates ${tablesOf(target.url).map(show).join('; ')}`).toBeDefined();
        const columns = mapping.columns ?? source?.columns ?? [];
        expect(source?.columns, where).toEqual(expect.arrayContaining(columns));
        expect(created?.columns, where).toEqual(expect.arrayContaining(columns));
      }
    }
  });

  it('serves metrics at the port the Dockerfile checks and exposes and compose publishes', () => {
    const config = loadComposeConfig();
    expect(config.metrics.enabled).toBe(true);
    expect(config.metrics.host).toMatch(/^(0\.0\.0\.0|::)$/);
    expect(healthcheckPort).toBe(config.metrics.port);
    expect(args(finalStage, 'EXPOSE').flatMap((a) => a.split(/\s+/))).toContain(String(config.metrics.port));
    expect(portsOf(trigsync).has(config.metrics.port)).toBe(true);
  });
});

describe('Dockerfile', () => {
  it('builds in node:20 slim stages and runs as a user other than root', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      const image = (args(stage, 'FROM')[0] ?? '').split(/\s+/)[0];
      expect(image).toMatch(/^node:20(\.\d+)*(-[\w.]+)?-slim(@sha256:[0-9a-f]+)?$/);
    }
    const user = args(finalStage, 'USER').at(-1);
    expect(user).toBeDefined();
    expect(user?.split(':')[0]).not.toMatch(/^(root|0)$/);
  });

  it('checks health by requesting /healthz', () => {
    expect(healthcheck).toMatch(/^(--\S+\s+)*CMD\s/);
    expect(healthcheck).toMatch(/\/healthz\b/);
    expect(healthcheckPort).toBeGreaterThan(0);
  });

  it('builds with the npm commands CI runs', () => {
    // Commands as they run: each line of .ci/run and each `&&` part of a RUN, not a word in an echo.
    const commands = (text: string) => text.split(/\n|&&|;/).map((c) => c.trim());
    const ci = commands(read('.ci/run'));
    const runs = commands(buildStages.flatMap((stage) => args(stage, 'RUN')).join('\n'));
    for (const command of [/^npm ci(\s|$)/, /^npm run build(\s|$)/]) {
      expect(
        ci.some((c) => command.test(c)),
        `.ci/run: ${command}`,
      ).toBe(true);
      expect(
        runs.some((c) => command.test(c)),
        `Dockerfile: ${command}`,
      ).toBe(true);
    }
  });

  it('runs `start` of bin/trigsync.js', () => {
    const exec = (keyword: string) => JSON.parse(args(finalStage, keyword).at(-1) ?? '[]') as string[];
    expect([...exec('ENTRYPOINT'), ...exec('CMD')]).toEqual(['node', 'bin/trigsync.js', 'start']);
    expect(isFile('bin/trigsync.js')).toBe(true);
  });

  it('copies what the runtime reads, from files the build context holds', () => {
    const copies = stages.flatMap((stage) =>
      args(stage, 'COPY').map((a) => {
        const words = a.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='));
        const paths = words.filter((w) => !w.startsWith('--'));
        return { from, sources: paths.slice(0, -1), stage };
      }),
    );
    for (const copy of copies.filter((c) => c.from === undefined)) {
      for (const source of copy.sources) {
        const path = source.replace(/^\.\//, '').replace(/\/$/, '');
        expect(existsSync(join(root, path)), source).toBe(true);
        for (const file of filesUnder(path)) {
          expect(dockerIgnored(file), `${file} is in .dockerignore`).toBe(false);
        }
      }
    }
    // The runtime: package.json's "files", package.json itself (type, version) and the dependencies.
    const pkg = JSON.parse(read('package.json')) as { files: string[] };
    const shipped = copies
      .filter((c) => c.stage === finalStage)
      .flatMap((c) => c.sources.map((s) => s.replace(/^(\/app\/|\.\/)/, '').replace(/\/$/, '')));
    expect(shipped).toEqual(expect.arrayContaining([...pkg.files, 'package.json', 'node_modules']));
  });
});
