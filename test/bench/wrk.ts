/** wrk runs and the backend they measure, shared by the L4 and HTTP benchmarks. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { note } from './harness.js';

const run = promisify(execFile);

/** A keep-alive HTTP backend as a process task: listens where the process runtime says. */
export const BACKEND_SCRIPT = `require('node:http').createServer((q, s) => s.end('ok\\n')).listen(Number(process.env.PORT), process.env.MESH_HOST)`;

/** A stack-file service running the backend on the nodes labelled side=<side>, port 8080. */
export function backendService(name: string, side: string, extra = ''): string {
  return `  ${name}:\n    command: ${JSON.stringify([process.execPath, '-e', BACKEND_SCRIPT])}\n    ports: ["8080"]\n    x-mesh: { runtime: process${extra} }\n    deploy: { placement: { constraints: [node.labels.side == ${side}] } }\n`;
}

export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

function millis(text: string | undefined): number {
  const match = /([\d.]+)(us|ms|s)/.exec(text ?? '');
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

/** wrk -t1 -c32 for a bounded time against the URL (with a Host header when given). */
export async function wrk(url: string, seconds: number, host?: string): Promise<WrkResult> {
  const args = [
    '-t1',
    '-c32',
    `-d${seconds}s`,
    '--latency',
    ...(host ? ['-H', `Host: ${host}`] : []),
    url,
  ];
  const { stdout } = await run('wrk', args, { timeout: (seconds + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  if (!Number.isFinite(rps)) throw new Error(`unreadable wrk output:\n${stdout}`);
  const errors = /Socket errors: (.*)/.exec(stdout)?.[1];
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1];
  if (errors) note(`  ${url}: socket errors ${errors}`);
  if (non2xx) note(`  ${url}: ${non2xx} answers were not 2xx/3xx`);
  return {
    rps: Math.round(rps),
    p50Ms: Math.round(millis(/50%\s+(\S+)/.exec(stdout)?.[1]) * 100) / 100,
    p99Ms: Math.round(millis(/99%\s+(\S+)/.exec(stdout)?.[1]) * 100) / 100,
  };
}

/** a/b of requests per second, to three places. */
export function ratio(a: WrkResult | undefined, b: WrkResult | undefined): number {
  return Math.round(((a?.rps ?? 0) / (b?.rps ?? 1)) * 1000) / 1000;
}
