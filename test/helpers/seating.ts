import {
  type AgentProcess,
  type LocalCluster,
  meshOn,
  stopAgents,
  view,
  waitForControl,
} from './local-cluster.js';
import { eventually } from './poll.js';

/** What one trial measured, from `mesh init` on. */
export interface SeatingTrial {
  /** When a survivor first saw three voters, and the node that made the cluster was killed. */
  seatedMs: number;
  /** When a survivor led, a new node had joined with a survivor's token, and the token rotated. */
  recoveredMs: number;
}

/**
 * The node that made the cluster is killed the moment a survivor sees the third voter seated:
 * both survivors must still hold the voters' key, so that each makes a token at once, the
 * cluster admits a new node with it, and rotates the join secret. Throws, saying what failed.
 */
export async function killFirstNodeAtThirdSeat(
  cluster: LocalCluster,
  hosts: string[],
  label: string,
): Promise<SeatingTrial> {
  const started = Date.now();
  const agents = await cluster.start(hosts.slice(0, 3), label);
  try {
    const [first, ...survivors] = agents as [AgentProcess, AgentProcess, AgentProcess];
    await eventually(
      async () => (await Promise.all(survivors.map(view))).some((v) => v.raft.voters.length === 3),
      { what: 'the third voter seated', timeoutMs: 60_000, intervalMs: 10 },
    );
    const seatedMs = Date.now() - started;
    first.child.kill('SIGKILL');
    await first.exited;
    // No waiting: a voter makes a token from its own replica, with the key it holds.
    let token = '';
    for (const survivor of survivors) {
      const made = await meshOn(survivor, 'token');
      if (made.code !== 0)
        throw new Error(`${survivor.dataDir}: no token right after the kill: ${made.stderr}`);
      token = made.stdout.trim();
    }
    const leader: AgentProcess = await eventually(
      async () => {
        for (const survivor of survivors)
          if ((await view(survivor)).raft.role === 'leader') return survivor;
        return false;
      },
      { what: 'a survivor leading', timeoutMs: 20_000, intervalMs: 100 },
    ).then((found) => found as AgentProcess);
    const joined = cluster.spawn(`${label}4`, [
      'join',
      token,
      '--advertise',
      hosts[3] as string,
      '--dns-upstream',
      'none',
    ]);
    agents.push(joined);
    await Promise.race([
      waitForControl(joined),
      joined.exited.then((code) => {
        throw new Error(`the node joining with a survivor's token exited (${code})`);
      }),
    ]);
    const rotated = await meshOn(leader, 'token', '--rotate');
    if (rotated.code !== 0) throw new Error(`token --rotate failed: ${rotated.stderr}`);
    return { seatedMs, recoveredMs: Date.now() - started };
  } finally {
    await stopAgents(agents);
  }
}
