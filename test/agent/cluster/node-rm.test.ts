import { readFileSync } from 'node:fs';
import test from 'ava';
import {
  type AgentProcess,
  LocalCluster,
  mesh,
  nodeIdOf,
  nodesSeenBy,
  waitForControl,
} from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';

// This file's loopback block: 127.0.25.0/24; three real agent processes.
const HOSTS = ['127.0.25.1', '127.0.25.2', '127.0.25.3'];
const cluster = await LocalCluster.create('node-rm');
test.after.always(() => cluster.close());

test('node rm revokes a node for good: refused while alive, then refused everywhere, also after restarts', async (t) => {
  const agents = await cluster.start(HOSTS, 'rm');
  const [a, b, c] = agents as [AgentProcess, AgentProcess, AgentProcess];
  const gone = await nodeIdOf(c);
  await eventually(
    async () => {
      const nodes = await nodesSeenBy(a.dataDir);
      // All three voters: losing any one of them keeps the quorum.
      return (
        nodes.length === 3 &&
        nodes.every((n) => n.status === 'alive' && n.recorded && n.raft === 'voter')
      );
    },
    { what: 'three nodes alive, recorded and voters', timeoutMs: 30_000, intervalMs: 200 },
  );

  const alive = await mesh('node', 'rm', gone, '--data-dir', a.dataDir);
  t.not(alive.code, 0);
  t.regex(alive.stderr, /is alive: drain it and stop its agent first, or pass --force/);

  c.child.kill('SIGKILL');
  await c.exited;
  await eventually(
    async () => (await nodesSeenBy(a.dataDir)).find((n) => n.id === gone)?.status === 'dead',
    { what: 'the stopped node dead', timeoutMs: 20_000, intervalMs: 200 },
  );
  // Gossip may see it dead a moment before the leader records it so: a person would retry too.
  let refusal = '';
  const removed = await eventually(
    async () => {
      const result = await mesh('node', 'rm', gone, '--data-dir', b.dataDir);
      refusal = result.stderr;
      return result.code === 0 ? result : undefined;
    },
    { what: 'node rm accepted', timeoutMs: 10_000, intervalMs: 200 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last refusal: ${refusal}`);
  });
  t.regex(removed?.stdout ?? '', /removed; its certificate is refused/);

  // Its agent starts again from its data dir: every connection it makes is refused and logged.
  const back = cluster.spawn('rm3', ['agent']);
  agents[2] = back;
  await waitForControl(back);
  await eventually(
    () =>
      [a, b].some((agent) =>
        readFileSync(`${agent.dataDir}.log`, 'utf8').includes(`of node ${gone} is revoked`),
      ),
    { what: 'the removed node refused', timeoutMs: 20_000, intervalMs: 200 },
  );
  for (const agent of [a, b]) {
    const row = (await nodesSeenBy(agent.dataDir)).find((n) => n.id === gone);
    t.is(row?.status, 'removed', `${agent.dataDir} lists it as removed`);
  }

  // The other two restart too: the removal is in the replicated state, not in memory. The removed
  // agent, still running, keeps knocking: the restarted ones refuse it as well.
  const refusedBy = (agent: AgentProcess) =>
    readFileSync(`${agent.dataDir}.log`, 'utf8')
      .split('\n')
      .filter((line) => line.includes(`of node ${gone} is revoked`)).length;
  const before = refusedBy(a);
  for (const [i, agent] of [a, b].entries()) {
    agent.child.kill('SIGKILL');
    await agent.exited;
    agents[i] = cluster.spawn(`rm${i + 1}`, ['agent']);
  }
  const [a2] = agents as [AgentProcess];
  await waitForControl(a2);
  await waitForControl(agents[1] as AgentProcess);
  await eventually(() => refusedBy(a2) > before, {
    what: 'the removed node refused again after a restart',
    timeoutMs: 20_000,
    intervalMs: 200,
  });
  const row = (await nodesSeenBy(a2.dataDir)).find((n) => n.id === gone);
  t.is(row?.status, 'removed');
});
