/** What the multi-process benchmarks share: options, polling, percentiles, agent calls. */

import { type ChildProcess, execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { RequestOf, StackRow } from '../../agent/control/api.js';
import { callAgent } from '../../cli/control-client.js';
import { outliveClosedStdout } from '../../examples/local-cluster.js';
import { TEST_IMAGE } from '../../examples/test-image.js';
import { onInterrupt } from '../helpers/interrupt.js';
import {
  type AgentProcess,
  checkUnreachable,
  firstPortOf,
  type LocalCluster,
  meshOn,
  testRanges,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

const run = promisify(execFile);

export function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

export const jsonOutput = process.argv.includes('--json');

/** Polls every 10 ms until check returns a value; errors (an agent restarting) count as "not yet". */
export function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  return eventually(() => check().catch(() => undefined), {
    what,
    timeoutMs,
    intervalMs: 10,
  }) as Promise<T>;
}

/** The command of the benchmarks' web service: busybox httpd on 8080. */
export const WEB_COMMAND = ['httpd', '-f', '-p', '8080', '-h', '/www'];

/** Writes a stack file of one web service with this many replicas; returns its path. */
export function writeWebStack(root: string, replicas: number): string {
  const file = join(root, 'stack.yml');
  writeFileSync(
    file,
    `services:\n  web:\n    image: ${TEST_IMAGE}\n    command: ${JSON.stringify(WEB_COMMAND)}\n    ports: ["8080"]\n    stop_grace_period: 1s\n    deploy:\n      replicas: ${replicas}\n`,
  );
  return file;
}

export const status = (agent: AgentProcess) => callAgent(agent.dataDir, 'GET /v1/status', {});

/**
 * Polls until every agent names the same leader and holds the same state (and `extra` holds for
 * each view); resolves with the views.
 */
export function agreement(
  agents: AgentProcess[],
  timeoutMs: number,
  extra: (view: Awaited<ReturnType<typeof status>>) => boolean = () => true,
) {
  return until('one leader and one state', timeoutMs, async () => {
    const views = await Promise.all(agents.map(status));
    const [first] = views;
    const same = views.every(
      (v) =>
        v.raft.leader &&
        v.raft.leader === first?.raft.leader &&
        v.raft.stateDigest === first?.raft.stateDigest &&
        extra(v),
    );
    return same ? views : undefined;
  });
}

export const tasks = (agent: AgentProcess, query: RequestOf<'GET /v1/tasks'> = {}) =>
  callAgent(agent.dataDir, 'GET /v1/tasks', query);

/** Median, p99, max and min of the samples (ms), rounded, with the samples themselves. */
export function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0);
  return {
    trials: samples.length,
    medianMs: at(0.5),
    p99Ms: at(0.99),
    maxMs: Math.round(sorted.at(-1) ?? 0),
    minMs: Math.round(sorted[0] ?? 0),
    samples: samples.map(Math.round),
  };
}

/** A process and those of its children whose command line `isPart` accepts. */
export function withChildren(pid: number, isPart: (cmdline: string) => boolean): number[] {
  const threads = readdirSync(`/proc/${pid}/task`);
  const children = threads.flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
      .split(' ')
      .filter(Boolean)
      .map(Number),
  );
  const parts = children.filter((child) => {
    try {
      return isPart(readFileSync(`/proc/${child}/cmdline`, 'utf8'));
    } catch {
      return false; // gone since it was listed
    }
  });
  return [pid, ...parts];
}

/**
 * A process and, when it is an agent, its HTTP ingress workers (child processes running
 * ingress-worker.js): what the agent costs is theirs too. Its process tasks are not counted.
 */
export function withIngressWorkers(pid: number): number[] {
  return withChildren(pid, (cmdline) => cmdline.includes('ingress-worker'));
}

/** CPU time (user + system) of a process and its ingress workers so far, in clock ticks. */
export function cpuTicks(pid: number): number {
  return ticksOf(withIngressWorkers(pid));
}

/** CPU time (user + system) of these processes so far, in clock ticks. */
export function ticksOf(pids: number[]): number {
  return pids.reduce((sum, p) => sum + ownCpuTicks(p), 0);
}

/** CPU time of one process from /proc/PID/stat. */
function ownCpuTicks(pid: number): number {
  // The command name (field 2) may hold spaces: count fields from after its closing parenthesis.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
}

/**
 * Resident memory of a process and its ingress workers now, in MiB, from /proc/PID/status: all
 * of it, and its parts — anonymous (heaps, stacks: the agent's own) and file-backed (the node
 * binary and libraries, shared with any other node process on the machine: counted once a
 * process all the same).
 */
export function memoryMb(pid: number): { rss: number; anon: number; file: number } {
  const total = { rss: 0, anon: 0, file: 0 };
  for (const p of withIngressWorkers(pid)) {
    const status = readFileSync(`/proc/${p}/status`, 'utf8');
    const kb = (field: string) =>
      Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm'))?.[1] ?? 0);
    total.rss += kb('VmRSS') / 1024;
    total.anon += kb('RssAnon') / 1024;
    total.file += kb('RssFile') / 1024;
  }
  return total;
}

let ticksPerSecond: Promise<number> | undefined;

/** The kernel's clock ticks a second, the unit of /proc's CPU times (asked once a run). */
export function clockTicksPerSecond(): Promise<number> {
  ticksPerSecond ??= run('getconf', ['CLK_TCK']).then(({ stdout }) => Number(stdout.trim()));
  return ticksPerSecond;
}

/** Each process's CPU over a window of `ms` from now, in percent of a core. */
export async function cpuPercentOver(
  pids: number[],
  ms: number,
  ticksPerSecond: number,
): Promise<number[]> {
  const before = pids.map(cpuTicks);
  await sleep(ms);
  return pids.map(
    (pid, i) => ((cpuTicks(pid) - (before[i] as number)) / ticksPerSecond / (ms / 1000)) * 100,
  );
}

export function report(result: unknown): void {
  console.log(jsonOutput ? JSON.stringify(result) : JSON.stringify(result, null, 2));
}

/** Installs a Debian package when its command is missing (benchmarks only: tests never install). */
export async function ensureTool(command: string, pkg: string): Promise<void> {
  try {
    await run('sh', ['-c', `command -v ${command}`]);
  } catch {
    note(`installing ${pkg} (Debian package) for the benchmark`);
    await run('apt-get', ['install', '-y', '-q', pkg], { timeout: 300_000 });
  }
}

/** Progress for a person; silent under --json. */
export function note(text: string): void {
  if (!jsonOutput) console.error(text);
}

/**
 * Two agents for a side-by-side benchmark: the first on hosts[0] labelled side=local, the second
 * joined on hosts[1] labelled side=remote; the stack deployed as `bench` once both take tasks
 * (--strict: refused until a node fits each service). Resolves with the first agent, the
 * services' addresses and where `bench.local`'s task listens (host:port, for the direct peer),
 * once the cluster's service range is routed unreachable here (nothing is sent to a service
 * address before).
 */
export async function sideBySide(
  cluster: LocalCluster,
  hosts: [string, string],
  prefix: string,
  services: string,
): Promise<{
  first: AgentProcess;
  second: AgentProcess;
  address: (id: string) => string;
  direct: string;
}> {
  const [first] = await cluster.start([hosts[0]], prefix, ['--label', 'side=local']);
  if (!first) throw new Error('no agent');
  const token = (await meshOn(first, 'token')).stdout.trim();
  const second = cluster.spawn(`${prefix}2`, [
    'join',
    token,
    '--advertise',
    hosts[1],
    '--label',
    'side=remote',
    '--dns-upstream',
    'none',
  ]);
  const file = cluster.file(`${prefix}.yml`, `services:\n${services}`);
  await until('both nodes able to take tasks', 30_000, async () => {
    const deployed = await meshOn(
      first,
      'deploy',
      '-c',
      file,
      'bench',
      '--strict',
      '--timeout',
      '20s',
    );
    return deployed.code === 0 ? true : undefined;
  });
  await checkUnreachable(testRanges(hosts[0]).serviceRange);
  const [stack] = (await callAgent(first.dataDir, 'GET /v1/stacks', {})) as StackRow[];
  const address = (id: string) => {
    const row = stack?.services.find((s) => s.id === id);
    if (!row || !('address' in row) || !row.address) throw new Error(`${id} has no address`);
    return row.address;
  };
  const [task] = await tasks(first, { service: 'bench.local' });
  const direct = task && firstPortOf(task);
  if (!direct) throw new Error('bench.local reports no port');
  return { first, second, address, direct };
}

/**
 * Makes `cleanup` run when the benchmark ends, and on Ctrl-C, SIGTERM or SIGHUP too (then the run
 * exits 130, 143 or 129): nothing it started (peers, containers, rules) is left behind; its local
 * clusters register themselves (LocalCluster). Returns the cleanup, to await in the benchmark's own
 * `finally`; it runs once whichever comes first.
 */
export function cleanupOnSignal(cleanup: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const once = () => {
    done ??= cleanup();
    return done;
  };
  outliveClosedStdout();
  onInterrupt(once);
  return once;
}

/** Stops a peer started in a process group of its own, with every process it forked. */
export function stopGroup(child: ChildProcess | undefined): void {
  if (child?.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch (error) {
    // Gone already, forks and all: nothing to stop.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}
