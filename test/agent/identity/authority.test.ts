import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { NodeRow } from '../../../agent/control/api.js';
import {
  type AgentProcess,
  agreed,
  LocalCluster,
  meshJson,
  meshOn,
  nodesSeenBy,
  waitForControl,
} from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';

// Loopback block 127.0.38.0/24: three voters, then joiners.
const HOSTS = ['127.0.38.1', '127.0.38.2', '127.0.38.3'];
const cluster = await LocalCluster.create('authority');
test.after.always(() => cluster.close());

test('the node that ran mesh init is gone: another voter makes tokens, signs joiners and rotates the secret', async (t) => {
  const [first, second, third] = (await cluster.start(HOSTS, 'auth')) as [
    AgentProcess,
    AgentProcess,
    AgentProcess,
  ];
  // Three voters, the CA handed to the state (and off the first node's disk), and the voters'
  // key on each voter.
  await agreed([first, second, third], (v) => v.raft.voters.length === 3, 60_000);
  await eventually(() => !existsSync(join(first.dataDir, 'pki', 'ca.key')), {
    what: 'the CA key off the first node’s disk',
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  await eventually(
    () => [second, third].every((a) => existsSync(join(a.dataDir, 'pki', 'secrets.key'))),
    { what: 'the voters’ key on the other voters', timeoutMs: 30_000, intervalMs: 200 },
  );

  first.child.kill('SIGKILL');
  await first.exited;
  const token = await eventually(
    async () => {
      const asked = await meshOn(second, 'token');
      return asked.code === 0 ? asked.stdout.trim() : '';
    },
    { what: 'a token from the second node', timeoutMs: 20_000, intervalMs: 300 },
  );
  const joiner = cluster.spawn('auth4', ['join', token, '--advertise', '127.0.38.4']);
  await waitForControl(joiner);
  await eventually(
    async () =>
      (await nodesSeenBy(second.dataDir)).filter((n) => n.status === 'alive' && n.recorded)
        .length === 3,
    { what: 'the joiner alive and recorded', timeoutMs: 30_000, intervalMs: 300 },
  );
  // Each node's certificate expiry, as it gossips (90 days by default).
  const rows = await meshJson<NodeRow[]>(second, 'node', 'ls');
  for (const row of rows.filter((n) => n.status === 'alive')) {
    const days = (Date.parse(row.certExpires ?? '') - Date.now()) / 86_400_000;
    t.true(days > 89 && days <= 90, `${row.id} certificate expires in ${days} days`);
  }
  // A worker gets a token too (from a voter), but may not rotate the secret.
  const fromWorker = await meshOn(joiner, 'token');
  t.is(fromWorker.code, 0, fromWorker.stderr);
  t.regex(fromWorker.stdout, /^MESH-1-/);

  const rotated = await meshOn(second, 'token', '--rotate');
  t.is(rotated.code, 0, rotated.stderr);
  t.not(rotated.stdout.trim(), token);
  const late = cluster.spawn('auth5', ['join', token, '--advertise', '127.0.38.5']);
  t.not(await late.exited, 0, 'the token from before the rotation admits no one');
  const refusedRotation = await meshOn(joiner, 'token', '--rotate');
  t.is(refusedRotation.code, 1);
  t.regex(refusedRotation.stderr, /is a worker: rotate the join secret on a manager/);
});
