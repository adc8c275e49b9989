/** wrk runs and the backend they measure, shared by the L4 and HTTP benchmarks. */
import { execFile } from 'node:child_process';
import { get } from 'node:http';
import { promisify } from 'node:util';
import { clockTicksPerSecond, note, ticksOf } from './harness.js';

const run = promisify(execFile);

/** A keep-alive HTTP backend as a process task: listens where the process runtime says. */
export const BACKEND_SCRIPT = `require('node:http').createServer((q, s) => s.end('ok\\n')).listen(Number(process.env.PORT), process.env.MESH_HOST)`;

/** A stack-file service running the backend on the nodes labelled side=<side>, port 8080. */
export function backendService(name: string, side: string, extra = ''): string {
  return `  ${name}:\n    command: ${JSON.stringify([process.execPath, '-e', BACKEND_SCRIPT])}\n    ports: ["8080"]\n    x-mesh: { runtime: process${extra} }\n    deploy: { placement: { constraints: [node.labels.side == ${side}] } }\n`;
}

/** Whether a GET of the URL (with this Host: fetch may not set one) answers 200. */
export function answers(url: string, host?: string): Promise<true | undefined> {
  return new Promise((resolve) => {
    const req = get(url, { headers: host ? { host } : {} }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? true : undefined);
    });
    req.on('error', () => resolve(undefined));
  });
}

export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests answered other than 2xx/3xx, plus connect, read, write and timeout errors. */
  errors: number;
}

/** How hard wrk pushes: its threads and the connections they hold open. */
export interface WrkLoad {
  threads: number;
  connections: number;
  /** How long a request may take before wrk counts it as an error (its default: 2 s). */
  timeoutS?: number;
  /** Each request on a connection of its own (Connection: close): rps is then connections/s. */
  newConnections?: boolean;
}

/** A duration as wrk and h2load print it (`812us`, `3.2ms`, `1.5s`), in ms. */
export function millis(text: string | undefined): number {
  const match = /([\d.]+)(us|ms|s)/.exec(text ?? '');
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

/** wrk (-t1 -c32 unless `load` says) for a bounded time against the URL (with a Host header when given). */
export async function wrk(
  url: string,
  seconds: number,
  host?: string,
  load: WrkLoad = { threads: 1, connections: 32 },
): Promise<WrkResult> {
  const args = [
    `-t${load.threads}`,
    `-c${load.connections}`,
    ...(load.timeoutS ? ['--timeout', `${load.timeoutS}s`] : []),
    `-d${seconds}s`,
    '--latency',
    ...(host ? ['-H', `Host: ${host}`] : []),
    ...(load.newConnections ? ['-H', 'Connection: close'] : []),
    url,
  ];
  const { stdout } = await run('wrk', args, { timeout: (seconds + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  if (!Number.isFinite(rps)) throw new Error(`unreadable wrk output:\n${stdout}`);
  const errors = /Socket errors: (.*)/.exec(stdout)?.[1];
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1];
  if (errors) note(`  ${url}: socket errors ${errors}`);
  if (non2xx) note(`  ${url}: ${non2xx} answers were not 2xx/3xx`);
  const socketErrors = [...(errors ?? '').matchAll(/(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  return {
    errors: Number(non2xx ?? 0) + socketErrors,
    rps: Math.round(rps),
    p50Ms: percentileMs(stdout, 50),
    p99Ms: percentileMs(stdout, 99),
  };
}

/** A wrk run, with the CPU time per request of the processes that served it when measured. */
export type WrkRun = WrkResult & { cpuUsPerRequest?: number };

/**
 * wrk's run, and what the processes serving it spent on each request (user + system CPU, in µs):
 * a proxy's own cost, whatever else loads the machine. Without `processes`, the run alone.
 */
export async function wrkWithCpu(
  processes: (() => number[]) | undefined,
  url: string,
  seconds: number,
  host?: string,
  load?: WrkLoad,
): Promise<WrkRun> {
  if (!processes) return wrk(url, seconds, host, load);
  const ticksPerSecond = await clockTicksPerSecond();
  const before = ticksOf(processes());
  const result = await wrk(url, seconds, host, load);
  const spent = (ticksOf(processes()) - before) / ticksPerSecond;
  return { ...result, cpuUsPerRequest: Math.round((spent * 1e6) / (result.rps * seconds)) };
}

/** a/b of the CPU time per request, to two places. */
export function cpuRatio(a: WrkRun | undefined, b: WrkRun | undefined): number {
  return Math.round(((a?.cpuUsPerRequest ?? 0) / (b?.cpuUsPerRequest ?? 1)) * 100) / 100;
}

/**
 * A latency percentile from wrk's distribution, whose lines start with it: the thread stats'
 * "+/- Stdev" column ("90.50%") must not be read as the 50th (it gave null).
 */
function percentileMs(stdout: string, percent: number): number {
  const value = new RegExp(`^\\s*${percent}%\\s+(\\S+)`, 'm').exec(stdout)?.[1];
  return Math.round(millis(value) * 100) / 100;
}

/** a/b of requests per second, to three places. */
export function ratio(a: WrkResult | undefined, b: WrkResult | undefined): number {
  return Math.round(((a?.rps ?? 0) / (b?.rps ?? 1)) * 1000) / 1000;
}
