import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { TaskRow } from '../../../agent/control/api.js';
import { DataDir } from '../../../agent/datadir.js';
import { Transport } from '../../../mesh/transport/transport.js';
import {
  type AgentProcess,
  firstPortOf,
  LocalCluster,
  mesh,
  nodesSeenBy,
} from '../../helpers/local-cluster.js';
import { captureLogs } from '../../helpers/logs.js';
import { bodyOnceAnswering, eventually } from '../../helpers/poll.js';

// Loopback block 127.0.26.0/24. No engine: the agents are pointed at a socket that is not there,
// as on a host without Docker.
process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
const HOSTS = ['127.0.26.1', '127.0.26.2'];
const STACK = fileURLToPath(
  new URL('../../../../examples/stacks/demo-process.yml', import.meta.url),
);
const cluster = await LocalCluster.create('process-stack');
test.after.always(() => cluster.close());

/** Forwards a command to `to`'s Raft as the node `as` (with its certificate), as its agent would. */
async function proposeAs(
  as: AgentProcess,
  to: AgentProcess,
  command: unknown,
): Promise<{ refused?: { code: string; message: string } }> {
  const dir = new DataDir(as.dataDir);
  const { identity } = await dir.readIdentity(await dir.readCluster());
  const transport = new Transport({
    identity,
    host: '127.0.26.3',
    port: 0,
    log: captureLogs('as').log,
  });
  try {
    await transport.listen();
    const leader = await new DataDir(to.dataDir).readCluster();
    return (await transport.request(
      { address: `${leader.advertise}:${leader.port}`, nodeId: leader.nodeId },
      'raft.propose',
      command,
    )) as { refused?: { code: string; message: string } };
  } finally {
    await transport.close();
  }
}

test('without an engine, an x-mesh process stack runs across agents; a worker may not change desired state; rm stops every process', async (t) => {
  const [a, b] = (await cluster.start(HOSTS, 'proc')) as [AgentProcess, AgentProcess];
  t.regex(
    readFileSync(`${a.dataDir}.log`, 'utf8'),
    /mesh: note: no Docker Engine reachable on node n[0-9a-f]+ \(.*\); only x-mesh runtime: process services run here/,
    'the agent says at start that only process services run on it',
  );
  // Both nodes recorded by the leader, so the scheduler can use both.
  await eventually(
    async () => {
      const nodes = await nodesSeenBy(a.dataDir);
      return nodes.length === 2 && nodes.every((n) => n.status === 'alive' && n.recorded);
    },
    { what: 'two nodes alive and recorded', timeoutMs: 30_000, intervalMs: 200 },
  );
  // A dry run says what would be deployed, with the agent's checks, and writes nothing.
  const dry = await mesh('deploy', '-c', STACK, '--dry-run', '--json', '--data-dir', a.dataDir);
  t.is(dry.code, 0, dry.stderr);
  t.like(JSON.parse(dry.stdout), {
    stack: 'demo',
    checkedBy: 'agent',
    services: [{ id: 'demo.web', change: 'created', version: 1, replicas: 3 }],
  });
  t.deepEqual(JSON.parse((await mesh('ls', '--json', '--data-dir', a.dataDir)).stdout), []);
  const impossible = cluster.file(
    'impossible.yml',
    'name: demo\nservices:\n  web:\n    command: ["true"]\n    x-mesh: { runtime: process }\n    deploy: { placement: { constraints: [node.labels.zone == mars] } }\n',
  );
  const waitingDry = await mesh('deploy', '-c', impossible, '--dry-run', '--data-dir', a.dataDir);
  t.is(waitingDry.code, 0, 'a service no node fits yet is deployed to wait, as in Swarm');
  t.regex(
    waitingDry.stderr,
    /mesh: warning: service web: no node satisfies node\.labels\.zone == mars \(.*\): its tasks stay pending until a node fits/,
  );
  const refusedDry = await mesh(
    'deploy',
    '-c',
    impossible,
    '--dry-run',
    '--strict',
    '--data-dir',
    a.dataDir,
  );
  t.is(refusedDry.code, 1, 'a refusal of the agent fails the dry run');
  t.regex(refusedDry.stderr, /no node satisfies node\.labels\.zone == mars/);

  const deployed = await mesh('deploy', '-c', STACK, '--data-dir', a.dataDir);
  t.is(deployed.code, 0, deployed.stderr);
  const { stdout } = await mesh('ps', 'web', '--json', '--data-dir', b.dataDir);
  const web = (JSON.parse(stdout) as TaskRow[]).filter((task) => task.desired === 'running');
  t.is(web.length, 3);
  t.is(new Set(web.map((task) => task.node)).size, 2, 'spread over both nodes');
  for (const task of web) {
    const address = firstPortOf(task) as string;
    t.is(address.split(':')[0], task.nodeAddress?.split(':')[0], 'listening on its node address');
    t.is(await bodyOnceAnswering(`http://${address}/`, task.id), `host=${task.id}\n`);
  }
  // b is the worker (a Raft learner) of two nodes: its reports made the tasks above run, but it
  // may not change desired state, neither through its CLI nor by forwarding to the leader itself.
  const refused = await mesh('rm', 'demo', '--data-dir', b.dataDir);
  t.is(refused.code, 1);
  t.regex(
    refused.stderr,
    /^mesh: node n[0-9a-f]+ is a worker: desired state changes on a manager \(n[0-9a-f]+ \(127\.0\.26\.1\)\); run the command there\n$/,
  );
  const forwarded = await proposeAs(b, a, { op: 'delete', kind: 'stacks', id: 'demo' });
  t.like(forwarded, { refused: { code: 'forbidden' } });
  t.regex(
    forwarded.refused?.message ?? '',
    /is a worker \(not a Raft voter\): it may write only its own task statuses and node record, not delete stacks\/demo/,
  );

  // A graceful stop leaves the cluster and stops what the node ran: no process is left orphaned,
  // and its replicas run on the other node.
  b.child.kill('SIGTERM');
  t.is(await b.exited, 0);
  const ports = (tasks: TaskRow[]) => tasks.map(firstPortOf);
  for (const address of ports(web.filter((task) => task.nodeAddress?.startsWith('127.0.26.2'))))
    await eventually(
      () =>
        fetch(`http://${address}/`).then(
          () => false,
          () => true,
        ),
      { what: `${address} stopped with its node`, timeoutMs: 15_000 },
    );
  const moved = await eventually(
    async () => {
      const { stdout: all } = await mesh('ps', 'web', '--json', '--data-dir', a.dataDir);
      const running = (JSON.parse(all) as TaskRow[]).filter(
        (task) => task.desired === 'running' && task.state === 'running',
      );
      const here = running.every((task) => task.nodeAddress?.startsWith('127.0.26.1'));
      return running.length === 3 && here ? running : undefined;
    },
    { what: 'every replica running on the node that stayed', timeoutMs: 30_000, intervalMs: 200 },
  );

  const removed = await mesh('rm', 'demo', '--data-dir', a.dataDir);
  t.is(removed.code, 0, removed.stderr);
  for (const address of ports(moved as TaskRow[]))
    await eventually(
      () =>
        fetch(`http://${address}/`).then(
          () => false,
          () => true,
        ),
      { what: `${address} stopped`, timeoutMs: 10_000 },
    );
  for (const task of web) {
    const address = firstPortOf(task) as string;
    await eventually(
      () =>
        fetch(`http://${address}/`).then(
          () => false,
          () => true, // nothing listens any more
        ),
      { what: `${task.id} stopped`, timeoutMs: 10_000 },
    );
  }
});
