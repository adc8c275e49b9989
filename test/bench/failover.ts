/**
 * Leader failover with real agent processes on loopback: kill -9 the Raft leader, time until
 * another node reports itself leader; restart the killed agent, let it catch up; repeat.
 *
 *   npm run bench:failover -- [--trials 20] [--json]
 */
import { type AgentProcess, LocalCluster, waitForControl } from '../helpers/local-cluster.js';
import { agreement, note, option, report, status, summary, until } from './harness.js';

const HOSTS = ['127.0.21.1', '127.0.21.2', '127.0.21.3'];

/** Every agent up, agreeing on one leader and one state, all of them voters. */
const settled = (agents: AgentProcess[]) =>
  agreement(agents, 60_000, (v) => v.raft.voters.length === agents.length);

async function main(): Promise<void> {
  const trials = option('trials', 20);
  const cluster = await LocalCluster.create('failover');
  const agents = await cluster.start(HOSTS, 'n');
  try {
    const samples: number[] = [];
    for (let trial = 0; trial < trials; trial++) {
      const views = await settled(agents);
      const oldLeader = views[0]?.raft.leader as string;
      const index = views.findIndex((v) => v.nodeId === oldLeader);
      const victim = agents[index] as AgentProcess;
      const killedAt = performance.now();
      victim.child.kill('SIGKILL');
      const survivors = agents.filter((a) => a !== victim);
      await until('new leader', 30_000, async () => {
        const seen = await Promise.all(survivors.map(status));
        return seen.some((v) => v.raft.role === 'leader' && v.nodeId !== oldLeader)
          ? true
          : undefined;
      });
      samples.push(performance.now() - killedAt);
      note(`trial ${trial + 1}: ${Math.round(samples.at(-1) ?? 0)} ms`);
      await victim.exited;
      agents[index] = cluster.spawn(`n${index + 1}`, ['agent']);
      await waitForControl(agents[index] as AgentProcess);
    }
    report(summary(samples));
  } finally {
    await cluster.close();
  }
}

await main();
