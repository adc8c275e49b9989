/**
 * A replica replaced by a rolling update is stopped only once every node up routes past it. A
 * node paused (SIGSTOP: a long GC pause, a VM stalled) keeps the routing view it had and resumes
 * with it; the old replica must still be there for whatever that node sends it until it catches
 * up. Real agents (process tasks, no engine).
 */
import test from 'ava';
import type { TaskRow } from '../../agent/control/api.js';
import {
  type AgentProcess,
  LocalCluster,
  logged,
  meshJson,
  meshOn,
  nodeIdOf,
  nodesRecorded,
  view,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

// Loopback block 127.0.82.0/24. No engine: process tasks only.
process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
const HOSTS = ['127.0.82.1', '127.0.82.2', '127.0.82.3'];
const cluster = await LocalCluster.create('paused-node');
test.after.always(() => cluster.close());

/** One replica pinned to the node labelled pin=web; its stop grace period gives 10 s to drain. */
const stack = (version: number) => `services:
  web:
    command: ["node", "-e", "require('http').createServer((q, s) => s.end('v' + process.env.VERSION)).listen(process.env.PORT, process.env.MESH_HOST)"]
    environment: { VERSION: "${version}" }
    expose: ["8080"]
    stop_grace_period: 20s
    x-mesh: { runtime: process }
    deploy:
      placement: { constraints: [node.labels.pin == web] }
      update_config: { order: start-first }
`;

const tasks = (agent: AgentProcess) => meshJson<TaskRow[]>(agent, 'ps', '-a', 'paused.web');

test('a node paused during a rollout: the replaced replica runs until that node routes past it', async (t) => {
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
  const [old] = await tasks(first);
  t.like(old, { node: ids[0], state: 'running', ready: true });

  // Paused: a node that is neither the replica's nor the leader (the others still commit).
  const { leader } = (await view(first)).raft;
  const pausedAt = agents.findIndex((_, i) => i > 0 && ids[i] !== leader);
  const paused = agents[pausedAt] as AgentProcess;
  t.teardown(() => paused.child.kill('SIGCONT'));
  paused.child.kill('SIGSTOP');
  const updated = await meshOn(
    first,
    'deploy',
    '-c',
    cluster.file('v2.yml', stack(2)),
    'paused',
    '--detach',
  );
  t.is(updated.code, 0, updated.stderr);
  const replaced = await eventually(
    async () => {
      const rows = await tasks(first);
      const fresh = rows.find((r) => r.serviceVersion === 2 && r.ready);
      const before = rows.find((r) => r.id === old?.id);
      return fresh && before?.desired === 'shutdown' ? before : undefined;
    },
    { what: 'version 2 ready and the old replica told to stop', timeoutMs: 20_000 },
  );
  t.is(replaced.state, 'running', 'told to stop, still running');
  // Past the moment once given to it (1 s), the old replica still serves: the paused node has
  // not said it routes past it.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  t.like(
    (await tasks(first)).find((r) => r.id === old?.id),
    { state: 'running' },
  );

  paused.child.kill('SIGCONT');
  await eventually(
    async () => (await tasks(first)).find((r) => r.id === old?.id)?.state === 'shutdown',
    { what: 'the old replica stopped once the paused node caught up', timeoutMs: 20_000 },
  );
  t.deepEqual(
    logged(first, 'stopping a task that some nodes may still route to'),
    [],
    'the paused node answered within half the grace period',
  );
});
