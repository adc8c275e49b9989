import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import type { NodeRow, TaskRow } from '../../../agent/control/api.js';
import { describeCertificate } from '../../../mesh/pki/certificate.js';
import {
  type AgentProcess,
  agreed,
  LocalCluster,
  mesh,
  meshJson,
  meshOn,
  nodeIdOf,
  nodesSeenBy,
  waitForControl,
} from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';

// Loopback block 127.0.47.0/24: three voters and a worker, with one-minute certificates.
const HOSTS = ['127.0.47.1', '127.0.47.2', '127.0.47.3'];
const WORKER = '127.0.47.4';
// Tasks of a node that is away stay assigned to it (the point is to see them come back).
const NODE_FLAGS = ['--dns-upstream', 'none', '--reschedule-after', '10m'];
const cluster = await LocalCluster.create('rejoin');
test.after.always(() => cluster.close());

const STACK = `name: pinned
services:
  job:
    command: ["sleep", "100000"]
    x-mesh: { runtime: process }
    deploy:
      placement: { constraints: ["node.labels.disk == ssd"] }
`;

async function expiry(agent: AgentProcess): Promise<number> {
  const pem = await readFile(join(agent.dataDir, 'pki', 'node.crt'), 'utf8');
  return describeCertificate(pem).notAfter.getTime();
}

test('nodes off past their certificate’s expiry come back as themselves: a voter by itself, a worker with a token', async (t) => {
  const voters = (await cluster.start(HOSTS, 'rj', ['--cert-validity', '1m'], NODE_FLAGS)) as [
    AgentProcess,
    AgentProcess,
    AgentProcess,
  ];
  const [first, , voter] = voters;
  await agreed(voters, (v) => v.raft.voters.length === 3, 60_000);
  const firstToken = (await meshOn(first, 'token')).stdout.trim();
  const worker = cluster.spawn('rj4', [
    'join',
    firstToken,
    '--advertise',
    WORKER,
    '--label',
    'disk=ssd',
    ...NODE_FLAGS,
  ]);
  await waitForControl(worker);
  const workerId = await nodeIdOf(worker);
  const voterId = await nodeIdOf(voter);
  // Until the cluster records the worker as gossip shows it, no node has the label to deploy to.
  await eventually(
    async () =>
      (await nodesSeenBy(first.dataDir)).some(
        (n) => n.id === workerId && n.recorded && n.labels.disk === 'ssd',
      ),
    { what: 'the worker recorded with its label', timeoutMs: 30_000, intervalMs: 300 },
  );
  const deployed = await meshOn(first, 'deploy', '-c', cluster.file('pinned.yml', STACK));
  t.is(deployed.code, 0, deployed.stderr);
  const [task] = (await eventually(
    async () => {
      const tasks = await meshJson<TaskRow[]>(first, 'ps', 'pinned');
      return tasks.length > 0 && tasks.every((r) => r.state === 'running') ? tasks : undefined;
    },
    { what: 'the pinned task running', timeoutMs: 30_000, intervalMs: 300 },
  )) as TaskRow[];
  t.is(task?.node, workerId);

  // The voter holds the voters' key (it opens the CA with it to renew by itself).
  await eventually(() => existsSync(join(voter.dataDir, 'pki', 'secrets.key')), {
    what: 'the voters’ key on the third voter',
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  // Both off, with no word to the cluster, until past their certificates' expiry.
  for (const agent of [voter, worker]) agent.child.kill('SIGKILL');
  await Promise.all([voter.exited, worker.exited]);
  const expired = Math.max(await expiry(voter), await expiry(worker));
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, expired + 1000 - Date.now())));

  // The worker cannot renew by itself: it says what to do rather than fail every handshake.
  const refused = await mesh('agent', '--data-dir', worker.dataDir);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /certificate expired on .* run "mesh join TOKEN --data-dir/);
  // The voter renews from its own replica of the CA and is back without a token.
  const voterBack = cluster.spawn('rj3', ['agent']);
  await waitForControl(voterBack);
  await eventually(async () => (await expiry(voterBack)) > Date.now() + 20_000, {
    what: 'the voter renewed its certificate by itself',
    timeoutMs: 20_000,
    intervalMs: 300,
  });

  const token = (await meshOn(first, 'token')).stdout.trim();
  const workerBack = cluster.spawn('rj4', ['join', token]);
  await waitForControl(workerBack);
  t.is(await nodeIdOf(workerBack), workerId);
  const nodes = (await eventually(
    async () => {
      const rows = await nodesSeenBy(first.dataDir);
      return rows.filter((n) => n.status === 'alive').length === 4 ? rows : undefined;
    },
    { what: 'all four nodes alive', timeoutMs: 30_000, intervalMs: 300 },
  )) as NodeRow[];
  t.is(nodes.length, 4, 'no node was added: both came back as themselves');
  t.is(nodes.find((n) => n.id === workerId)?.labels.disk, 'ssd');
  t.true(nodes.some((n) => n.id === voterId && n.raft === 'voter'));
  const after = (await eventually(
    async () => {
      const tasks = await meshJson<TaskRow[]>(first, 'ps', 'pinned');
      return tasks.length > 0 && tasks.every((r) => r.state === 'running') ? tasks : undefined;
    },
    { what: 'the pinned task running again', timeoutMs: 30_000, intervalMs: 300 },
  )) as TaskRow[];
  t.deepEqual(
    after.map((r) => [r.id, r.node]),
    [[task?.id, workerId]],
    'the same task, on the same node',
  );
  const log = await readFile(`${worker.dataDir}.log`, 'utf8');
  t.regex(log, /came back as .* with a new certificate/);
});
