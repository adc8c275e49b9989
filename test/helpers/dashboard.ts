/** `mesh dashboard` as a user starts it, for the dashboard's test and benchmark (no ava here). */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AgentProcess } from './local-cluster.js';
import { eventually } from './poll.js';

const MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

/** `mesh dashboard --no-open` on the agent; resolves with the process and the link it printed. */
export async function startDashboard(
  agent: AgentProcess,
): Promise<{ child: ChildProcess; link: string }> {
  const child = spawn(
    process.execPath,
    [MAIN, 'dashboard', '--no-open', '--data-dir', agent.dataDir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let printed = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    printed += chunk.toString();
  });
  const link = await eventually(() => /http:\/\/127\.0\.0\.1:\d+\/\?t=\S+/.exec(printed)?.[0], {
    what: 'the dashboard link printed',
    timeoutMs: 15_000,
  });
  return { child, link };
}
