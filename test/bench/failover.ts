/**
 * Leader failover with real agent processes on loopback: kill -9 the Raft leader, time until
 * another node reports itself leader; restart the killed agent, let it catch up; repeat. Each
 * trial's stages, from the new leader's account of its campaign, in ms since the kill: when it
 * last heard the old leader, its pre-vote, its vote, leading, and its term's first commit (from
 * then on it serves writes).
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
    const stages: Array<Record<string, number | null>> = [];
    for (let trial = 0; trial < trials; trial++) {
      const views = await settled(agents);
      const oldLeader = views[0]?.raft.leader as string;
      const index = views.findIndex((v) => v.nodeId === oldLeader);
      const victim = agents[index] as AgentProcess;
      const killedAt = performance.now();
      const killedAtEpoch = Date.now();
      victim.child.kill('SIGKILL');
      const survivors = agents.filter((a) => a !== victim);
      await until('new leader', 30_000, async () => {
        const seen = await Promise.all(survivors.map(status));
        return seen.some((v) => v.raft.role === 'leader' && v.nodeId !== oldLeader)
          ? true
          : undefined;
      });
      samples.push(performance.now() - killedAt);
      // The new leader's own account of its campaign, once its term's first entry committed.
      const campaign = await until('the new term committed', 30_000, async () => {
        const seen = await Promise.all(survivors.map(status));
        const leading = seen.find((v) => v.raft.role === 'leader' && v.nodeId !== oldLeader);
        return leading?.raft.lastCampaign?.committedAt ? leading.raft.lastCampaign : undefined;
      });
      const since = (iso: string | null) => (iso === null ? null : Date.parse(iso) - killedAtEpoch);
      const trialStages = {
        leaderHeard: since(campaign.leaderHeardAt),
        preVote: since(campaign.preVoteAt),
        vote: since(campaign.voteAt),
        leader: since(campaign.leaderAt),
        firstCommit: since(campaign.committedAt),
      };
      stages.push(trialStages);
      note(
        `trial ${trial + 1}: ${Math.round(samples.at(-1) ?? 0)} ms; since the kill: leader last heard ${trialStages.leaderHeard}, pre-vote ${trialStages.preVote}, vote ${trialStages.vote}, leading ${trialStages.leader}, first commit ${trialStages.firstCommit}`,
      );
      await victim.exited;
      agents[index] = cluster.spawn(`n${index + 1}`, ['agent']);
      await waitForControl(agents[index] as AgentProcess);
    }
    const of = (key: string) => {
      const { medianMs, p99Ms, maxMs } = summary(
        stages.map((s) => s[key]).filter((ms): ms is number => ms !== null),
      );
      return { medianMs, p99Ms, maxMs };
    };
    report({
      ...summary(samples),
      stagesSinceKillMs: {
        leaderHeard: of('leaderHeard'),
        preVote: of('preVote'),
        vote: of('vote'),
        leader: of('leader'),
        firstCommit: of('firstCommit'),
      },
      trialStages: stages,
      goals: { medianMs: 1000, p99Ms: 2000, maxMs: 3000 },
    });
  } finally {
    await cluster.close();
  }
}

await main();
