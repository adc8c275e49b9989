/** What the multi-process benchmarks share: options, polling, percentiles, agent calls. */
import type { StatusResponse, TaskRow } from '../../agent/control-api.js';
import { callAgent } from '../../cli/control-client.js';
import type { AgentProcess } from '../../examples/local-cluster.js';

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

export const jsonOutput = process.argv.includes('--json');

/** Polls every 10 ms until check returns a value; errors count as "not yet". */
export async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await pause(10);
  }
}

export const status = (agent: AgentProcess) =>
  callAgent(agent.dataDir, 'GET', '/v1/status') as Promise<
    StatusResponse & { raft: NonNullable<StatusResponse['raft']> }
  >;

export const tasks = (agent: AgentProcess, query = '') =>
  callAgent(agent.dataDir, 'GET', `/v1/tasks${query}`) as Promise<TaskRow[]>;

/** Median, p99 and min of the samples (ms), rounded, with the samples themselves. */
export function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0);
  return {
    trials: samples.length,
    medianMs: at(0.5),
    p99Ms: at(0.99),
    minMs: Math.round(sorted[0] ?? 0),
    samples: samples.map(Math.round),
  };
}

export function report(result: unknown): void {
  console.log(jsonOutput ? JSON.stringify(result) : JSON.stringify(result, null, 2));
}

/** Progress for a person; silent under --json. */
export function note(text: string): void {
  if (!jsonOutput) console.error(text);
}
