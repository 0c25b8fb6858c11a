/**
 * `node reaper.js <demoPid> <demoDir>`: started by the demo in a session of its own, so that it outlives
 * a demo that dies without cleaning up (SIGKILL, an out-of-memory kill). Then it stops the servers under
 * demoDir and removes it. Once the demo has removed demoDir itself, the reaper exits.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { isAlive, killServerSync } from './processes.js';

const checkIntervalMs = 500;

export function startReaperLoop(demoPid: number, demoDir: string): void {
  const timer = setInterval(() => {
    if (!existsSync(demoDir)) {
      clearInterval(timer);
      return;
    }
    if (isAlive(demoPid)) return;
    clearInterval(timer);
    for (const entry of readdirSync(demoDir, { withFileTypes: true })) {
      if (entry.isDirectory()) killServerSync(join(demoDir, entry.name));
    }
    rmSync(demoDir, { recursive: true, force: true, maxRetries: 3 });
  }, checkIntervalMs);
}

// Run as a script, never on import.
const [script, pidArgument, dirArgument] = process.argv.slice(1);
if (script !== undefined && pathToFileURL(script).href === import.meta.url && dirArgument !== undefined) {
  startReaperLoop(Number(pidArgument), dirArgument);
}
