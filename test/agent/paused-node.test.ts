/**
 * A replica replaced by a rolling update is stopped only once every node up routes past it. A
 * node paused (SIGSTOP: a long GC pause, a VM stalled) keeps the routing view it had and resumes
 * with it; the old replica must still be there for whatever that node sends it until it catches
 * up. Real agents (process tasks, no engine).
 */
import test from 'ava';
import type { TaskRow } from '../../agent/control/api.js';
import { callAgent } from '../../cli/control-client.js';
import {
  type AgentProcess,
  agreed,
  LocalCluster,
  logged,
  meshOn,
  nodeIdOf,
  nodesRecorded,
  type RaftView,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

// Loopback block 127.0.82.0/24. No engine: process tasks only.
process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
const HOSTS = ['127.0.82.1', '127.0.82.2', '127.0.82.3'];
const cluster = await LocalCluster.create('paused-node');
test.after.always(() => cluster.close());

/**
 * One replica pinned to the node labelled pin=web; its stop grace period gives 10 s to drain.
 * A version after the first listens (is ready) 1 s after it starts: the test pauses a node then.
 */
const stack = (version: number) => `services:
  web:
    command: ["node", "-e", "const s = require('http').createServer((q, a) => a.end('v' + process.env.VERSION)); setTimeout(() => s.listen(process.env.PORT, process.env.MESH_HOST), process.env.VERSION === '1' ? 0 : 1000)"]
    environment: { VERSION: "${version}" }
    ports: ["8080"]
    stop_grace_period: 20s
    x-mesh: { runtime: process }
    deploy:
      placement: { constraints: [node.labels.pin == web] }
      update_config: { order: start-first }
`;

/** `mesh ps -a paused.web`'s rows, asked from this process (a CLI process a poll is slow). */
const tasks = (agent: AgentProcess): Promise<TaskRow[]> =>
  callAgent(agent.dataDir, 'GET /v1/tasks', { name: 'paused.web' });

const WARNING = 'stopping a task that some nodes may still route to';

test('a node paused during a rollout: the replaced replica is stopped once that node routes past it, or once it is given up on, naming it', async (t) => {
  const agents = (await cluster.start(HOSTS, 'paused')) as [
    AgentProcess,
    AgentProcess,
    AgentProcess,
  ];
  const [first] = agents;
  await nodesRecorded(first, 3);
  const ids = await Promise.all(agents.map(nodeIdOf));
  const labelled = await meshOn(first, 'node', 'label', ids[0] as string, 'pin=web');
  t.is(labelled.code, 0, labelled.stderr);
  const deployed = await meshOn(first, 'deploy', '-c', cluster.file('v1.yml', stack(1)), 'paused');
  t.is(deployed.code, 0, deployed.stderr);
  // Paused: a node that is neither the replica's nor the leader (the other two voters commit).
  const [{ raft }] = (await agreed(agents, (v) => v.raft.voters.length === 3)) as [RaftView];
  const pausedAt = agents.findIndex((_, i) => i > 0 && ids[i] !== raft.leader);
  const paused = agents[pausedAt] as AgentProcess;
  t.teardown(() => paused.child.kill('SIGCONT'));

  /**
   * Deploys `version`; pauses the node once the new replica is placed, before it is ready (the
   * old one is told to stop only then). Resolves with the replica replaced once it is told to.
   */
  const rollPausing = async (version: number): Promise<TaskRow> => {
    const [old] = (await tasks(first)).filter((r) => r.desired === 'running');
    const file = cluster.file(`v${version}.yml`, stack(version));
    // A write cut short by an election is sent again: a deploy of the same file is idempotent.
    await eventually(
      async () => (await meshOn(first, 'deploy', '-c', file, 'paused', '--detach')).code === 0,
      { what: `version ${version} deployed`, timeoutMs: 30_000 },
    );
    await eventually(async () => (await tasks(first)).some((r) => r.serviceVersion === version), {
      what: `version ${version} placed`,
      intervalMs: 20,
    });
    paused.child.kill('SIGSTOP');
    return eventually(
      async () => {
        const before = (await tasks(first)).find((r) => r.id === old?.id);
        return before?.desired === 'shutdown' ? before : undefined;
      },
      { what: `version ${version} ready and the replica before told to stop`, timeoutMs: 20_000 },
    );
  };
  const stopped = (task: TaskRow) =>
    eventually(
      async () => (await tasks(first)).find((r) => r.id === task.id)?.state === 'shutdown',
      {
        what: `${task.id} stopped`,
        timeoutMs: 30_000,
      },
    );

  // The node back within a few seconds: the stop waited for its word, and got it.
  const second = await rollPausing(2);
  t.is(second.state, 'running', 'told to stop, still running while the node is paused');
  paused.child.kill('SIGCONT');
  await stopped(second);
  t.deepEqual(logged(first, WARNING), [], 'the paused node, back, said it routes past it');

  // The node paused on: the stop waits until its link is given up for silence (or half the stop
  // grace period), then goes on, saying which node may still route to the replica, and why.
  const third = await rollPausing(3);
  await stopped(third);
  paused.child.kill('SIGCONT');
  const [warned] = logged(first, WARNING);
  t.like(warned, { task: third.id, lagging: [{ node: ids[pausedAt] }] });
  const [given] = (warned?.lagging ?? []) as Array<{ reason: string }>;
  t.regex(given?.reason ?? '', /nothing heard|timed out/, 'why: the node was silent');
});
