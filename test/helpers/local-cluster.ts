import { rm } from 'node:fs/promises';
import type { NodeRow, RaftStatus, StatusResponse } from '../../agent/control-api.js';
import { DataDir } from '../../agent/datadir.js';
import {
  type AgentProcess,
  mesh,
  scratchDirectory,
  spawnAgent,
  startCluster,
  stopAgents,
} from '../../examples/local-cluster.js';
import { eventually } from './poll.js';

export {
  type AgentProcess,
  mesh,
  stopAgents,
  waitForControl,
} from '../../examples/local-cluster.js';

/**
 * Real agent processes for one test file or benchmark, in a scratch directory of its own: every
 * agent started here is stopped, and the directory removed, by close() (MESH_KEEP_TEST_DIRS=1
 * keeps it for a look at the logs).
 */
export class LocalCluster {
  private readonly agents: AgentProcess[] = [];

  private constructor(readonly root: string) {}

  static async create(label: string): Promise<LocalCluster> {
    return new LocalCluster(await scratchDirectory(label));
  }

  /** `mesh init` on the first host, `mesh join` on the others, as `${prefix}1`, `${prefix}2`, ... */
  async start(hosts: string[], prefix: string, flags: string[] = []): Promise<AgentProcess[]> {
    const agents = await startCluster(this.root, hosts, prefix, flags);
    this.agents.push(...agents);
    return agents;
  }

  /** One more agent process (`mesh agent` restarts the one whose data dir is `name`). */
  spawn(name: string, args: string[]): AgentProcess {
    const agent = spawnAgent(this.root, name, args);
    this.agents.push(agent);
    return agent;
  }

  async close(): Promise<void> {
    await stopAgents(this.agents);
    if (process.env.MESH_KEEP_TEST_DIRS !== '1')
      await rm(this.root, { recursive: true, force: true });
  }
}

/** `mesh node ls --json` as the agent with this data dir sees it. */
export async function nodesSeenBy(dataDir: string): Promise<NodeRow[]> {
  const { code, stdout, stderr } = await mesh('node', 'ls', '--json', '--data-dir', dataDir);
  if (code !== 0) throw new Error(`node ls failed: ${stderr}`);
  return JSON.parse(stdout) as NodeRow[];
}

/** The node ID an agent's data dir holds. */
export async function nodeIdOf(agent: AgentProcess): Promise<string> {
  return (await new DataDir(agent.dataDir).readCluster()).nodeId;
}

export type RaftView = StatusResponse & { raft: RaftStatus };

/** `mesh status --json` of the agent. */
export async function view(agent: AgentProcess): Promise<RaftView> {
  const { code, stdout, stderr } = await mesh('status', '--json', '--data-dir', agent.dataDir);
  if (code !== 0) throw new Error(`status failed: ${stderr}`);
  return JSON.parse(stdout) as RaftView;
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
