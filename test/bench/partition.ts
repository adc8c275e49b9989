/**
 * Partitions with real agents and iptables on loopback (127.0.30.1-3): each round isolates one
 * node (the leader in even rounds, a follower in odd ones) for 45 s while the majority takes a
 * write every second, heals, and times until all three agree on one leader and one state. Reports
 * the heal times, the fewest voters any node reported, and acknowledged writes lost (must be 0).
 * Every rule lives in its own chain and is removed at the end.
 *
 *   npm run bench:partition -- [--rounds 10] [--partition-ms 45000] [--json]
 */
import { Firewall } from '../helpers/firewall.js';
import { type AgentProcess, LocalCluster, mesh, nodeIdOf } from '../helpers/local-cluster.js';
import { agreement, note, option, report, status, summary, until } from './harness.js';

const HOSTS = ['127.0.30.1', '127.0.30.2', '127.0.30.3'];

async function main(): Promise<void> {
  const rounds = option('rounds', 10);
  const partitionMs = option('partition-ms', 45_000);
  const cluster = await LocalCluster.create('bench-partition');
  const firewall = await Firewall.open('bench-partition');
  try {
    const agents = await cluster.start(HOSTS, 'n');
    await until('three voters', 60_000, async () =>
      (await status(agents[0] as AgentProcess)).raft.voters.length === 3 ? true : undefined,
    );
    const target = await nodeIdOf(agents[0] as AgentProcess);
    const healMs: number[] = [];
    const acknowledged: string[] = [];
    let minVoters = Number.POSITIVE_INFINITY;
    for (let round = 0; round < rounds; round++) {
      const views = await agreement(agents, 120_000);
      const leaderAt = views.findIndex((v) => v.nodeId === views[0]?.raft.leader);
      const cutAt = round % 2 === 0 ? leaderAt : (leaderAt + 1) % agents.length;
      const cut = agents[cutAt] as AgentProcess;
      const majority = agents.filter((a) => a !== cut);
      await firewall.split(
        [HOSTS[cutAt] as string],
        HOSTS.filter((_, i) => i !== cutAt),
      );
      const end = Date.now() + partitionMs;
      for (let write = 0; Date.now() < end; write++) {
        const on = majority[write % majority.length] as AgentProcess;
        const key = `r${round}-w${write}`;
        const answer = await mesh('node', 'label', target, `${key}=set`, '--data-dir', on.dataDir);
        if (answer.code === 0) acknowledged.push(key);
        const seen = await Promise.all(majority.map((a) => status(a).catch(() => undefined)));
        for (const v of seen) if (v) minVoters = Math.min(minVoters, v.raft.voters.length);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      const healedAt = performance.now();
      await firewall.heal();
      await agreement(agents, 120_000);
      healMs.push(performance.now() - healedAt);
      note(
        `round ${round + 1}: isolated ${round % 2 === 0 ? 'the leader' : 'a follower'}, healed in ${Math.round(healMs.at(-1) ?? 0)} ms`,
      );
    }
    const { stdout } = await mesh(
      'node',
      'inspect',
      target,
      '--data-dir',
      agents[0]?.dataDir ?? '',
    );
    const labels = (JSON.parse(stdout) as { userLabels: Record<string, string> }).userLabels;
    const { medianMs, p99Ms, samples } = summary(healMs);
    report({
      rounds,
      partitionMs,
      healMs: { medianMs, p99Ms, samples },
      minVoters,
      acknowledgedWrites: acknowledged.length,
      lostWrites: acknowledged.filter((key) => labels[key] !== 'set').length,
    });
  } finally {
    await firewall.close();
    await cluster.close();
  }
}

await main();
