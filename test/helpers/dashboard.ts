/** `mesh dashboard` as a user starts it, for the dashboard's test and benchmark (no ava here). */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AgentProcess } from './local-cluster.js';
import { eventually } from './poll.js';

const MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

/**
 * `mesh dashboard --no-open` on the agent (or with a context: as that operator, from elsewhere);
 * resolves with the process and the link it printed.
 */
export async function startDashboard(
  on: AgentProcess | { context: string; dataDir: string },
): Promise<{ child: ChildProcess; link: string }> {
  const context = 'context' in on ? ['--context', on.context] : [];
  const child = spawn(
    process.execPath,
    [MAIN, ...context, 'dashboard', '--no-open', '--data-dir', on.dataDir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let printed = '';
  let said = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    printed += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    said += chunk.toString();
  });
  const link = await eventually(
    () => {
      if (child.exitCode !== null) throw new Error(`mesh dashboard ended: ${said}`);
      return /http:\/\/127\.0\.0\.1:\d+\/\?t=\S+/.exec(printed)?.[0];
    },
    { what: 'the dashboard link printed', timeoutMs: 15_000 },
  );
  return { child, link };
}
