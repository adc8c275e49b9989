import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { callAgent } from '../cli/control-client.js';
import { pollUntil } from '../mesh/poll.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const run = promisify(execFile);

/**
 * Runs real agents as separate processes on one machine, each on its own loopback address with
 * its own data dir: what `npm run demo` shows. The tests drive it through test/helpers/local-cluster.
 */

/** A real agent process (`mesh init|join|agent`), logging to a file beside its data dir. */
export interface AgentProcess {
  dataDir: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

/**
 * Output that nobody reads any more is not worth dying for: Ctrl-C in `npm run demo | tee log`
 * also ends tee, and the next line written would end this process (an unhandled EPIPE) before it
 * stopped the agents it started, which run in process groups of their own. Lines written to a
 * closed pipe are dropped (there is no one left to tell, stderr may be that pipe too); any other
 * output error still ends the process.
 */
export function outliveClosedStdout(): void {
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
}

/**
 * How a harness interrupted by each signal exits: 128 + the signal's number, as a shell reports a
 * process it ended (SIGHUP: its terminal closed).
 */
export const INTERRUPT_EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;

/**
 * Kills this process's remaining children (a CLI command still waiting on an agent that was just
 * stopped): called by an interrupted harness right before process.exit, in the same tick, so
 * that no step of the run still going can start another command in between (one did: a `mesh
 * node label` of bench:partition outlived it, when pkill was awaited).
 */
export function killChildren(): void {
  try {
    execFileSync('pkill', ['-KILL', '-P', String(process.pid)], { stdio: 'ignore' });
  } catch (error) {
    // pkill exits 1 when there was none: nothing to do. Anything else is said; the exit goes on.
    if ((error as { status?: number }).status !== 1)
      console.error(`could not kill what this run started: ${(error as Error).message}`);
  }
}

export function spawnAgent(root: string, name: string, args: string[]): AgentProcess {
  const dataDir = join(root, name);
  const log = openSync(join(root, `${name}.log`), 'a');
  // Its own process group: a Ctrl-C in the terminal reaches only the launcher, which then stops
  // each agent with one SIGTERM (a second signal would make an agent skip its graceful leave).
  const child = spawn(process.execPath, [MAIN, ...args, '--data-dir', dataDir], {
    stdio: ['ignore', log, log],
    detached: true,
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { dataDir, child, exited };
}

/** Runs a CLI command to completion. */
export function mesh(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return meshWithin(0, ...args);
}

/**
 * Runs a CLI command to completion, or kills it after timeoutMs (0: no limit): then its code is
 * 124 and stderr says which command gave no answer, so a test fails naming it instead of hanging.
 */
export async function meshWithin(
  timeoutMs: number,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], {
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; killed?: boolean; stdout: string; stderr: string };
    if (e.killed)
      return {
        code: 124,
        stdout: e.stdout,
        stderr: `${e.stderr}mesh ${args.join(' ')}: no answer within ${timeoutMs} ms, killed\n`,
      };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** How long one status request of waitForControl may take before it is taken for a hang. */
const STATUS_TRY_MS = 60_000;

/**
 * Whether the agent's control API answers a status request within the time. Asked from this
 * process, not with `mesh status`: a CLI process a try (a Node start, about 0.2 s of CPU, ten
 * or more per agent) slowed the very agents it waited on. A refusal or no socket yet is a "not
 * yet": the wait's deadline reports what the agent logged.
 */
async function answersWithin(dataDir: string, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  const status = callAgent(dataDir, 'GET /v1/status', {}).then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([status, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * How long an agent may take to answer: a join on a machine running the whole test suite at once
 * has been seen to need more than 15 s (keys made, the seed answering, the engine opened).
 */
const CONTROL_DEADLINE_MS = 30_000;

/**
 * Waits until the agent's control API answers, or fails at the deadline naming the agent's state
 * and the last lines it logged, so a failure in CI says where the agent was.
 */
export async function waitForControl(
  agent: AgentProcess,
  timeoutMs = CONTROL_DEADLINE_MS,
): Promise<void> {
  // Each try may wait on an agent busy starting (its keys made on a loaded machine): it is the
  // wait's deadline that counts, a try is only cut off when it hangs for good.
  const answered = await pollUntil(() => answersWithin(agent.dataDir, STATUS_TRY_MS), {
    timeoutMs,
    intervalMs: 100,
  });
  if (answered) return;
  const { exitCode, signalCode } = agent.child;
  const state =
    exitCode === null && signalCode === null ? 'running' : `exited (${exitCode ?? signalCode})`;
  throw new Error(
    `agent with ${agent.dataDir} not answering after ${timeoutMs} ms, ${state}; its log ends:\n` +
      lastLines(`${agent.dataDir}.log`, 8),
  );
}

/** The last lines of a file, each cut to a readable length; what was there to read. */
function lastLines(path: string, count: number): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return `(${(error as Error).message})`;
  }
  return text
    .trimEnd()
    .split('\n')
    .slice(-count)
    .map((line) => (line.length > 400 ? `${line.slice(0, 400)}...` : line))
    .join('\n');
}

/**
 * `mesh init` on the first host, `mesh join` with its token on the others; resolves when every
 * agent's control API answers. Agents are named `${prefix}1`, `${prefix}2`, ...
 */
export async function startCluster(
  root: string,
  hosts: string[],
  prefix = 'node',
  initFlags: string[] = [],
  /** Flags for every agent, the first one's included (DNS port and upstreams). */
  nodeFlags: string[] = [],
): Promise<AgentProcess[]> {
  const [first, ...rest] = hosts;
  if (!first) throw new Error('a cluster needs at least one host');
  const seed = spawnAgent(root, `${prefix}1`, [
    'init',
    '--advertise',
    first,
    ...initFlags,
    ...nodeFlags,
  ]);
  const agents = [seed];
  try {
    await waitForControl(seed);
    const { token } = await callAgent(seed.dataDir, 'GET /v1/token', {});
    for (const [i, host] of rest.entries()) {
      agents.push(
        spawnAgent(root, `${prefix}${i + 2}`, ['join', token, '--advertise', host, ...nodeFlags]),
      );
    }
    await Promise.all(agents.map((a) => waitForControl(a)));
    return agents;
  } catch (error) {
    await stopAgents(agents);
    throw error;
  }
}

/**
 * Signals every agent at once and waits for each to exit. Stopping together is safe: an agent
 * that is leaving takes nothing over from another of the host, so the last holder removes the
 * host's service addresses and routes.
 */
export async function stopAgents(
  agents: AgentProcess[],
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  for (const agent of agents) agent.child.kill(signal);
  await Promise.all(agents.map((a) => a.exited));
}
