import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  type AgentProcess,
  agreed,
  LocalCluster,
  meshJson,
  meshOn,
  nodeIdOf,
  view,
  waitForControl,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

// Loopback block 127.0.53.0/24: three voters and a worker.
const HOSTS = ['127.0.53.1', '127.0.53.2', '127.0.53.3'];
const WORKER = '127.0.53.4';
const CONFIGS = 5;
const CONFIG_BYTES = 500 * 1024;
const cluster = await LocalCluster.create('large-state');
test.after.always(() => cluster.close());

/** A stack whose five configs of 500 KiB make its deploy one Raft entry of about 2.5 MiB. */
function largeStack(n: number): string {
  const names = Array.from({ length: CONFIGS }, (_, k) => `c${k}`);
  // Random, so that nothing on the way compresses them away.
  for (const name of names)
    cluster.file(
      `${n}-${name}.txt`,
      randomBytes(CONFIG_BYTES).toString('base64').slice(0, CONFIG_BYTES),
    );
  return cluster.file(
    `large${n}.yml`,
    `name: large${n}
services:
  job:
    command: ["sleep", "100000"]
    x-mesh: { runtime: process }
    configs: [${names.join(', ')}]
configs:
${names.map((name) => `  ${name}: { file: ./${n}-${name}.txt }`).join('\n')}
`,
  );
}

test('a voter that missed megabytes of deploys catches up, and a worker backs up a state larger than a transport frame', async (t) => {
  const voters = await cluster.start(HOSTS, 'ls');
  const [first, , third] = voters as [AgentProcess, AgentProcess, AgentProcess];
  await agreed(voters, (v) => v.raft.voters.length === 3, 60_000);
  const token = (await meshOn(first, 'token')).stdout.trim();
  const worker = cluster.spawn('ls4', [
    'join',
    token,
    '--advertise',
    WORKER,
    '--dns-upstream',
    'none',
  ]);
  await waitForControl(worker);

  third.child.kill('SIGTERM');
  await third.exited;
  // 7.5 MiB of configs the third voter does not see: more than one transport frame (4 MiB).
  for (const n of [1, 2, 3]) {
    const deployed = await meshOn(first, 'deploy', '-c', largeStack(n), '--detach');
    t.is(deployed.code, 0, deployed.stderr);
  }
  const back = cluster.spawn('ls3', ['agent']);
  await waitForControl(back);
  const leader = await view(first);
  await eventually(
    async () => {
      const now = await view(back).catch(() => undefined);
      return now !== undefined && now.raft.applied >= leader.raft.applied;
    },
    { what: 'the third voter caught up', timeoutMs: 30_000, intervalMs: 300 },
  );
  const stacks = await meshJson<Array<{ name: string }>>(back, 'ls');
  t.deepEqual(stacks.map((s) => s.name).sort(), ['large1', 'large2', 'large3']);

  // A worker's backup is taken on a voter and comes back over the transport, in parts. Which
  // node is the worker: the leader may give the stopped voter's seat to the fourth (one change
  // at a time, so wait until exactly one of the two is a learner).
  const ids = new Map([
    [await nodeIdOf(worker), worker],
    [await nodeIdOf(back), back],
  ]);
  const learner = await eventually(
    async () => {
      const learners = (await view(first)).raft.learners.filter((id) => ids.has(id));
      return learners.length === 1 ? ids.get(learners[0] as string) : undefined;
    },
    { what: 'one of the two a learner', timeoutMs: 60_000, intervalMs: 300 },
  );
  const file = join(cluster.root, 'large.backup');
  const taken = await meshJson<{ counts: Record<string, number> }>(
    learner as AgentProcess,
    'backup',
    file,
  );
  t.like(taken.counts, { stacks: 3 });
  t.true(statSync(file).size > 4 * 1024 * 1024, 'the backup is larger than one frame');
});
