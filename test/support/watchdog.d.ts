// Types for watchdog.js, which stays plain JS so it can run detached without a TypeScript loader.

export interface PostmasterPid {
  pid: number;
  port: number | null;
  /** Line 8 of postmaster.pid: "starting", "ready", "stopping", ... */
  status: string;
  shmId: number | null;
}

export const KEEP_MARKER: string;
export function sleepSync(ms: number): void;
export function isAlive(pid: number): boolean;
export function hasExited(pid: number): boolean;
export function processStartTime(pid: number): string | null;
export function signalProcess(pid: number, signal: NodeJS.Signals): void;
export function readPostmasterPid(dataDir: string): PostmasterPid | null;
export function livePostmaster(dataDir: string): PostmasterPid | null;
export function findPostgresProcesses(root: string): number[];
export function removeSharedMemory(shmId: number | null): void;
export function stopPostgresUnder(root: string, options?: { graceMs?: number; killMs?: number }): boolean;
export function reapRunRoot(runRoot: string, options?: { keep?: boolean }): boolean;
export function sweepStaleRuns(baseDir: string): string[];
