import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type {
  NodeRow,
  RaftStatus,
  ServiceDetail,
  ServiceRow,
  StatusResponse,
  TaskRow,
} from '../../agent/control/api.js';
import { DataDir } from '../../agent/datadir.js';
import { byAddress } from '../../cli/cluster.js';
import { callAgent } from '../../cli/control-client.js';
import {
  recordRanges,
  releaseRun,
  removeRange,
  scratchDirectory,
} from '../../examples/leftovers.js';
import {
  type AgentProcess,
  meshWithin,
  spawnAgent,
  startCluster,
  stopAgents,
} from '../../examples/local-cluster.js';
import { onInterrupt } from './interrupt.js';
import { eventually } from './poll.js';

const run = promisify(execFile);

export {
  type AgentProcess,
  mesh,
  stopAgents,
  waitForControl,
} from '../../examples/local-cluster.js';
export { removeRange };

/**
 * Real agent processes for one test file or benchmark, in a scratch directory of its own: every
 * agent started here is stopped, and the directory removed, by close() (MESH_KEEP_TEST_DIRS=1
 * keeps it for a look at the logs).
 */
export class LocalCluster {
  private readonly agents: AgentProcess[] = [];
  /** Takes back the cleanup an interrupt would run: close runs it itself. */
  private readonly forget: () => void;
  private closing: Promise<void> | undefined;

  private constructor(readonly root: string) {
    // A run stopped with Ctrl-C (or SIGTERM) leaves no agent, address or route behind either.
    this.forget = onInterrupt(() => this.close());
  }

  static async create(label: string): Promise<LocalCluster> {
    return new LocalCluster(await scratchDirectory(label));
  }

  /**
   * `mesh init` on the first host, `mesh join` on the others, as `${prefix}1`, `${prefix}2`, ...
   * Unless the flags say otherwise, the cluster gets service and bridge ranges of its own (from
   * its first host's address, so test files never share one), DNS on port 53 of each agent's
   * address, and no upstream resolver: nothing a test does is ever sent off the machine.
   */
  async start(
    hosts: string[],
    prefix: string,
    flags: string[] = [],
    nodeFlags: string[] = ['--dns-upstream', 'none'],
  ): Promise<AgentProcess[]> {
    const ranges = testRanges(hosts[0] ?? '');
    const initFlags = [
      ...(flags.includes('--service-range') ? [] : ['--service-range', ranges.serviceRange]),
      ...(flags.includes('--bridge-range') ? [] : ['--bridge-range', ranges.bridgeRange]),
      ...flags,
    ];
    const flagValue = (flag: string) => initFlags[initFlags.indexOf(flag) + 1] as string;
    await recordRanges(this.root, [flagValue('--service-range'), flagValue('--bridge-range')]);
    const agents = await startCluster(this.root, hosts, prefix, initFlags, nodeFlags);
    this.agents.push(...agents);
    return agents;
  }

  /** One more agent process (`mesh agent` restarts the one whose data dir is `name`). */
  spawn(name: string, args: string[]): AgentProcess {
    const agent = spawnAgent(this.root, name, args);
    this.agents.push(agent);
    return agent;
  }

  /** Writes a file (a stack file) into the cluster's scratch directory; returns its path. */
  file(name: string, text: string): string {
    const path = join(this.root, name);
    writeFileSync(path, text);
    return path;
  }

  /** Stops and releases everything; a second call (an interrupt and the harness's own) waits for the first. */
  close(): Promise<void> {
    this.closing ??= this.release();
    return this.closing;
  }

  private async release(): Promise<void> {
    this.forget();
    await stopAgents(this.agents);
    // A killed agent leaves its tasks, service addresses and routes behind: they go with the
    // cluster, and so does the tmpfs of its tasks' secrets.
    await releaseRun(this.root);
    if (process.env.MESH_KEEP_TEST_DIRS !== '1')
      await rm(this.root, { recursive: true, force: true });
  }
}

/**
 * A cluster's own ranges, from the third octet X of its first host (127.0.X.1): services in
 * 10.250.X.0/24, bridges in a /20 of 10.240.0.0/12.
 */
export function testRanges(host: string): { serviceRange: string; bridgeRange: string } {
  const x = Number(host.split('.')[2] ?? 0);
  return {
    serviceRange: `10.250.${x}.0/24`,
    bridgeRange: `10.${240 + (x >> 4)}.${(x & 15) << 4}.0/20`,
  };
}

/**
 * How long a CLI command of a test may take: longer than any --timeout a test gives, and shorter
 * than ava's (2 min without a test ending), so a command that hangs fails its test by name.
 */
const CLI_DEADLINE_MS = 90_000;

/** A CLI command run against the agent. */
export function meshOn(agent: AgentProcess, ...args: string[]) {
  return meshWithin(CLI_DEADLINE_MS, ...args, '--data-dir', agent.dataDir);
}

/** A CLI command's --json output, parsed; a failed command throws with its stderr. */
export async function meshJson<T>(agent: AgentProcess, ...args: string[]): Promise<T> {
  const { code, stdout, stderr } = await meshOn(agent, ...args, '--json');
  if (code !== 0) throw new Error(`mesh ${args.join(' ')} failed: ${stderr}`);
  return JSON.parse(stdout) as T;
}

/**
 * The nodes the agent with this data dir lists (`mesh node ls --json`'s rows, in its order),
 * asked from this process: polls of it would otherwise start a CLI process a try.
 */
export async function nodesSeenBy(dataDir: string): Promise<NodeRow[]> {
  const { nodes } = await callAgent(dataDir, 'GET /v1/nodes', {});
  return nodes.sort(byAddress);
}

/** The node ID an agent's data dir holds. */
export async function nodeIdOf(agent: AgentProcess): Promise<string> {
  return (await new DataDir(agent.dataDir).readCluster()).nodeId;
}

/** host:port where the task's first published port is reachable, if it has one. */
export function firstPortOf(task: TaskRow): string | undefined {
  const [port] = task.ports;
  return port && `${port.hostIp}:${port.hostPort}`;
}

/** One line of an agent's log (pino: one JSON event a line, its time in ms). */
export type LogEvent = Record<string, unknown> & { time: number; msg: string };

/** The events of the agent's log with this message, from `since` (ms) on, oldest first. */
export function logged(agent: AgentProcess, message: string, since = 0): LogEvent[] {
  return readFileSync(`${agent.dataDir}.log`, 'utf8')
    .split('\n')
    .filter((line) => line.includes(`"msg":${JSON.stringify(message)}`))
    .map((line) => JSON.parse(line) as LogEvent)
    .filter((event) => event.time >= since);
}

export type RaftView = StatusResponse & { raft: RaftStatus };

/** The agent's status (`mesh status --json`), asked from this process as nodesSeenBy is. */
export async function view(agent: AgentProcess): Promise<RaftView> {
  return (await callAgent(agent.dataDir, 'GET /v1/status', {})) as RaftView;
}

/** Waits until the agents agree on a leader and state, and `extra` holds for each view. */
export async function agreed(
  agents: AgentProcess[],
  extra: (v: RaftView) => boolean = () => true,
  timeoutMs = 20_000,
): Promise<RaftView[]> {
  const views = await eventually(
    async () => {
      const views = await Promise.all(agents.map(view));
      const [first] = views;
      const same = views.every(
        (v) =>
          v.raft.leader !== null &&
          v.raft.leader === first?.raft.leader &&
          v.raft.stateDigest === first?.raft.stateDigest &&
          extra(v),
      );
      return same ? views : undefined;
    },
    { what: 'agreement on leader and state', timeoutMs, intervalMs: 200 },
  );
  return views as RaftView[]; // eventually() resolves only with a truthy value
}

/** Resolves once the agent lists `count` nodes, each alive and recorded by a join. */
export async function nodesRecorded(agent: AgentProcess, count: number): Promise<void> {
  await eventually(
    async () => {
      const nodes = await nodesSeenBy(agent.dataDir);
      return nodes.length === count && nodes.every((n) => n.status === 'alive' && n.recorded);
    },
    { what: `${count} nodes alive and recorded`, timeoutMs: 30_000, intervalMs: 200 },
  );
}

/** `mesh deploy` of a stack file written to the cluster's directory; throws when refused. */
export async function deployStack(
  cluster: LocalCluster,
  agent: AgentProcess,
  stack: string,
  text: string,
): Promise<void> {
  const deployed = await meshOn(agent, 'deploy', '-c', cluster.file(`${stack}.yml`, text), stack);
  if (deployed.code !== 0) throw new Error(`mesh deploy ${stack}: ${deployed.stderr}`);
}

/**
 * Resolves once the agents routed the range unreachable here (nothing may send to it before),
 * and throws if they do not within 20 s.
 */
export async function checkUnreachable(range: string): Promise<void> {
  await eventually(
    async () => (await run('ip', ['route', 'show', 'type', 'unreachable'])).stdout.includes(range),
    { what: `${range} routed unreachable`, timeoutMs: 20_000, intervalMs: 200 },
  );
}

/**
 * The first service of the first stack, as `mesh ls --json` on the agent lists it; asked from
 * this process (the autoscaler tests poll it).
 */
export async function firstServiceRow(agent: AgentProcess): Promise<ServiceRow> {
  const [stack] = await callAgent(agent.dataDir, 'GET /v1/stacks', {});
  const row = stack?.services[0];
  if (!row || 'damaged' in row) throw new Error(`no service listed: ${JSON.stringify(stack)}`);
  return row;
}

/** The service's definition and autoscaling (`mesh inspect --json`'s spec), asked likewise. */
export function serviceDetail(agent: AgentProcess, service: string): Promise<ServiceDetail> {
  return callAgent(agent.dataDir, 'GET /v1/service', { service });
}
