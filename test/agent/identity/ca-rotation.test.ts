import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { CaStatus, TaskRow } from '../../../agent/control/api.js';
import { certificatePin, signedBy, splitPem } from '../../../mesh/pki/certificate.js';
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

// Loopback block 127.0.49.0/24: three voters; the third is away during the rotation.
const HOSTS = ['127.0.49.1', '127.0.49.2', '127.0.49.3'];
const cluster = await LocalCluster.create('ca-rotation');
test.after.always(() => cluster.close());

const stack = (name: string) =>
  `name: ${name}\nservices:\n  worker:\n    command: ["sleep", "100000"]\n    x-mesh: { runtime: process }\n    deploy: { replicas: 2 }\n`;

/** The CAs a node trusts (its data dir), and whether its certificate is the given CA's. */
function onDisk(agent: AgentProcess) {
  const pki = (name: string) => readFileSync(join(agent.dataDir, 'pki', name), 'utf8');
  const trusted = splitPem(pki('ca.crt'));
  return {
    trusted: trusted.map((pem) => certificatePin(pem)),
    issuedBy: (pin: string) =>
      trusted.some((pem) => certificatePin(pem) === pin && signedBy(pki('node.crt'), pem)),
    chain: existsSync(join(agent.dataDir, 'pki', 'chain.crt')),
  };
}

async function running(agent: AgentProcess, name: string): Promise<boolean> {
  const tasks = await meshJson<TaskRow[]>(agent, 'ps', name);
  return tasks.length === 2 && tasks.every((r) => r.state === 'running');
}

test('a CA rotation re-issues every live node’s certificate with no connection refused; a node away comes back with a token', async (t) => {
  const [first, second, away] = (await cluster.start(HOSTS, 'rot')) as [
    AgentProcess,
    AgentProcess,
    AgentProcess,
  ];
  await agreed([first, second, away], (v) => v.raft.voters.length === 3, 60_000);
  const deployed = await eventually(
    async () =>
      (await meshOn(first, 'deploy', '-c', cluster.file('a.yml', stack('before')))).code === 0,
    { what: 'a stack deployed', timeoutMs: 30_000, intervalMs: 500 },
  );
  t.true(deployed);
  const oldToken = (await meshOn(first, 'token')).stdout.trim();
  const before = await meshJson<CaStatus>(first, 'ca', 'status');
  const awayId = await nodeIdOf(away);
  away.child.kill('SIGKILL');
  await away.exited;
  await eventually(
    async () => (await nodesSeenBy(first.dataDir)).find((n) => n.id === awayId)?.status === 'dead',
    { what: 'the third node seen dead', timeoutMs: 30_000, intervalMs: 300 },
  );

  const startedAt = Date.now();
  const rotated = await meshOn(second, 'ca', 'rotate', '--json', '--timeout', '60s');
  t.is(rotated.code, 0, rotated.stderr);
  const after = JSON.parse(rotated.stdout) as CaStatus;
  t.not(after.current, before.current);
  t.is(after.next, null);
  t.is(after.retired, 1);
  t.log(`rotated in ${Date.now() - startedAt} ms`);
  for (const agent of [first, second]) {
    const disk = await eventually(
      () => {
        const now = onDisk(agent);
        return now.trusted.length === 1 ? now : undefined;
      },
      { what: 'only the new CA trusted on disk', timeoutMs: 10_000, intervalMs: 200 },
    );
    t.deepEqual(disk?.trusted, [after.current], agent.dataDir);
    t.true(disk?.issuedBy(after.current), `${agent.dataDir}: certificate from the new CA`);
    t.false(disk?.chain, 'no cross-signed CA presented once the rotation is over');
  }
  // The cluster works on: the earlier stack runs and a new one deploys.
  t.true(
    await eventually(() => running(second, 'before'), {
      what: 'the earlier stack running',
      timeoutMs: 30_000,
      intervalMs: 300,
    }),
  );
  const again = await meshOn(first, 'deploy', '-c', cluster.file('b.yml', stack('after')));
  t.is(again.code, 0, again.stderr);
  for (const agent of [first, second]) {
    const refused = readFileSync(`${agent.dataDir}.log`, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { time: number; msg: string; remote?: string })
      .filter(
        (l) =>
          l.time >= startedAt && /refused/.test(l.msg) && !l.remote?.startsWith(HOSTS[2] as string),
      );
    t.deepEqual(refused, [], `${agent.dataDir}: nothing refused between the live nodes`);
  }

  // A token from before the rotation pins the retired CA: refused.
  const stale = await mesh(
    'join',
    oldToken,
    '--advertise',
    '127.0.49.5',
    '--data-dir',
    join(cluster.root, 'stale'),
  );
  t.not(stale.code, 0);
  t.regex(stale.stderr, /not part of the cluster this token is for/);

  // Restarted as it was, the node that was away trusts only the retired CA: it says what to do.
  const stuck = cluster.spawn('rot3', ['agent']);
  await eventually(
    () =>
      /CA was rotated while this node was away/.test(readFileSync(`${away.dataDir}.log`, 'utf8')),
    { what: 'the node away told to rejoin with a token', timeoutMs: 20_000, intervalMs: 300 },
  );
  stuck.child.kill('SIGTERM');
  await stuck.exited;

  // It comes back as itself with a new token.
  const token = (await meshOn(first, 'token')).stdout.trim();
  const back = cluster.spawn('rot3', ['join', token]);
  await waitForControl(back);
  t.is(await nodeIdOf(back), awayId);
  const status = await eventually(
    async () => {
      const now = await meshJson<CaStatus>(first, 'ca', 'status');
      return now.nodes.length === 3 && now.nodes.every((n) => n.caPin === after.current)
        ? now
        : undefined;
    },
    { what: 'all three nodes on the new CA', timeoutMs: 30_000, intervalMs: 300 },
  );
  t.truthy(status);
  // Its replica catches up through the rotation it missed, to the new CA alone.
  await eventually(() => onDisk(back).trusted.join() === after.current, {
    what: 'the node back trusting only the new CA',
    timeoutMs: 20_000,
    intervalMs: 200,
  });
  t.pass();
});
