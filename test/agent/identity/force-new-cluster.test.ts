import { readFile } from 'node:fs/promises';
import test from 'ava';
import type { StatusResponse } from '../../../agent/control/api.js';
import {
  type AgentProcess,
  agreed,
  LocalCluster,
  meshJson,
  meshOn,
  waitForControl,
} from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';

// Loopback block 127.0.39.0/24: three voters, two lost for good.
const HOSTS = ['127.0.39.1', '127.0.39.2', '127.0.39.3'];
const cluster = await LocalCluster.create('force-new');
test.after.always(() => cluster.close());

const stack = (name: string) =>
  `name: ${name}\nservices:\n  worker:\n    command: ["sleep", "100000"]\n    x-mesh: { runtime: process }\n`;

test('two of three voters lost for good: --force-new-cluster on the third, and the state is all there', async (t) => {
  const agents = await cluster.start(HOSTS, 'force');
  const [survivor, ...lost] = agents as [AgentProcess, AgentProcess, AgentProcess];
  await agreed(agents, (v) => v.raft.voters.length === 3, 60_000);
  const before = await meshOn(survivor, 'deploy', '-c', cluster.file('a.yml', stack('before')));
  t.is(before.code, 0, before.stderr);

  for (const agent of lost) agent.child.kill('SIGKILL');
  await Promise.all(lost.map((a) => a.exited));
  survivor.child.kill('SIGKILL');
  await survivor.exited;

  // Without the flag it cannot lead alone; with it, it does.
  const alone = cluster.spawn('force1', ['agent', '--force-new-cluster']);
  await waitForControl(alone);
  const after = await eventually(
    async () => {
      const deployed = await meshOn(alone, 'deploy', '-c', cluster.file('b.yml', stack('after')));
      return deployed.code === 0 && deployed;
    },
    { what: 'a deploy on the forced cluster', timeoutMs: 30_000, intervalMs: 500 },
  );
  t.regex(after ? after.stderr : '', /stack after converged/);
  const status = await meshJson<StatusResponse>(alone, 'status');
  t.is(status.raft.voters.length, 1);
  const stacks = await meshJson<Array<{ name: string }>>(alone, 'ls');
  t.deepEqual(
    stacks.map((s) => s.name),
    ['after', 'before'],
    'the state from before is there',
  );
  t.regex(
    await readFile(`${alone.dataDir}.log`, 'utf8'),
    /forced a new cluster: this node is the only voter, with the state it holds/,
  );

  // A lost machine that comes back after all still trusts the CA: it rejoins by itself, as a
  // member of the new configuration, and its replica catches up with the forced node's.
  const returning = cluster.spawn('force2', ['agent']);
  await waitForControl(returning);
  const caughtUp = await eventually(
    async () => {
      const [mine, theirs] = await Promise.all([
        meshJson<StatusResponse>(alone, 'status'),
        meshJson<StatusResponse>(returning, 'status'),
      ]);
      return (
        theirs.raft.leader === mine.nodeId &&
        theirs.raft.stateDigest === mine.raft.stateDigest &&
        mine.raft.learners.concat(mine.raft.voters).includes(theirs.nodeId)
      );
    },
    {
      what: 'the returning node caught up with the forced one',
      timeoutMs: 60_000,
      intervalMs: 500,
    },
  );
  t.true(caughtUp);
  const seen = await meshJson<Array<{ name: string }>>(returning, 'ls');
  t.deepEqual(
    seen.map((s) => s.name),
    ['after', 'before'],
  );
});
