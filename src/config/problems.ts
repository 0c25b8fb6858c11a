/**
 * Collecting configuration problems. Validation goes on after the first problem so that one run
 * reports everything wrong with a file; each problem keeps its key path, so that it can be printed as
 * `targets[1].tables[0].columns` and located in the file.
 */

export type KeyPath = readonly (string | number)[];

export interface Problem {
  path: KeyPath;
  message: string;
  /** The environment variable the value came from, when it did not come from the file. */
  env?: string;
}

export class Problems {
  readonly list: Problem[] = [];

  add(path: KeyPath, message: string, env?: string): void {
    this.list.push(env === undefined ? { path, message } : { path, message, env });
  }

  get count(): number {
    return this.list.length;
  }
}

/** `targets[1].tables[0].columns`; keys that are not plain words are shown quoted: `["a b"]`. */
export function formatKeyPath(path: KeyPath): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) text += text === '' ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text === '' ? 'configuration' : text;
}

/**
 * One line per problem: `[file[:line]: ]key[ (from ENV)]: what is wrong`. `locate` gives the line of
 * a key path in the file, when known.
 */
export function renderProblem(
  problem: Problem,
  file?: string,
  locate?: (path: KeyPath) => number | undefined,
) {
  const key = formatKeyPath(problem.path);
  const keyPart = problem.env === undefined ? key : `${key} (from ${problem.env})`;
  if (file === undefined) return `${keyPart}: ${problem.message}`;
  const line = problem.env === undefined ? locate?.(problem.path) : undefined;
  return `${file}${line === undefined ? '' : `:${line}`}: ${keyPart}: ${problem.message}`;
}
