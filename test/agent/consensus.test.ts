import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  type AgentProcess,
  agreed,
  LocalCluster,
  mesh,
  stopAgents,
  view,
  waitForControl,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

// Loopback blocks: 127.0.15.0/24 (three nodes), 127.0.16.0/24 (five), 127.0.17.0/24 (two),
// 127.0.27.0/24 (damaged storage).
const local = await LocalCluster.create('consensus');
test.after.always(() => local.close());

/** Starts a cluster on the given hosts and waits until every node is a voter under one leader. */
async function cluster(name: string, hosts: string[]): Promise<AgentProcess[]> {
  const agents = await local.start(hosts, name);
  await agreed(agents, (v) => v.raft.voters.length === hosts.length, 30_000);
  return agents;
}

test.serial(
  'three agents: a killed leader is replaced, restarts catch up, a full restart keeps the state',
  async (t) => {
    const agents = await cluster('c', ['127.0.15.1', '127.0.15.2', '127.0.15.3']);
    const [before] = await agreed(agents);
    const leaderId = before?.raft.leader as string;
    const leaderIndex = (await Promise.all(agents.map(view))).findIndex(
      (v) => v.nodeId === leaderId,
    );
    const leader = agents[leaderIndex] as AgentProcess;

    leader.child.kill('SIGKILL');
    await leader.exited;
    const survivors = agents.filter((a) => a !== leader);
    const [after] = await agreed(survivors, (v) => v.raft.leader !== leaderId);
    t.true((after?.raft.term ?? 0) > (before?.raft.term ?? 0), 'a new term with a new leader');

    const restarted = local.spawn(`c${leaderIndex + 1}`, ['agent']);
    agents[leaderIndex] = restarted;
    await waitForControl(restarted);
    const caughtUp = await agreed(agents);
    t.is(new Set(caughtUp.map((v) => v.raft.stateDigest)).size, 1, 'the old leader caught up');

    // The restarted node's own record may still be committing: the state to keep is one that
    // stayed the same between two agreements a second apart.
    let last = '';
    const settled = await eventually(
      async () => {
        const [view] = await agreed(agents);
        const digest = `${view?.raft.applied}/${view?.raft.stateDigest}`;
        const same = digest === last;
        last = digest;
        return same ? view : undefined;
      },
      { what: 'the state settled', timeoutMs: 30_000, intervalMs: 1000 },
    );
    const committed = settled?.raft;
    for (const agent of agents) agent.child.kill('SIGKILL');
    await Promise.all(agents.map((a) => a.exited));
    const again = agents.map((_, i) => local.spawn(`c${i + 1}`, ['agent']));
    await Promise.all(again.map((a) => waitForControl(a)));
    const reborn = await agreed(again);
    t.is(
      reborn[0]?.raft.stateDigest,
      committed?.stateDigest,
      'the same committed state after kill -9 of all three',
    );
    t.true((reborn[0]?.raft.commit ?? 0) >= (committed?.commit ?? 0));

    // SIGTERM to the leader: it hands leadership over, leaves, and exits cleanly.
    const leaderNow = reborn[0]?.raft.leader as string;
    const views = await Promise.all(again.map(view));
    const graceful = again[views.findIndex((v) => v.nodeId === leaderNow)] as AgentProcess;
    graceful.child.kill('SIGTERM');
    t.is(await graceful.exited, 0);
    await agreed(
      again.filter((a) => a !== graceful),
      (v) => v.raft.leader !== leaderNow,
    );
    const log = readFileSync(`${graceful.dataDir}.log`, 'utf8');
    t.notRegex(
      log,
      /"level":(40|50|60).*"(message handler failed|shutdown failed)"/,
      'a clean shutdown',
    );
  },
);

test.serial('five agents keep committing with two of them down', async (t) => {
  const agents = await cluster('f', [
    '127.0.16.1',
    '127.0.16.2',
    '127.0.16.3',
    '127.0.16.4',
    '127.0.16.5',
  ]);
  const [before] = await agreed(agents);
  const views = await Promise.all(agents.map(view));
  // Take down the leader and one follower.
  const leader = agents[views.findIndex((v) => v.nodeId === before?.raft.leader)] as AgentProcess;
  const follower = agents.find((a) => a !== leader) as AgentProcess;
  for (const victim of [leader, follower]) victim.child.kill('SIGKILL');
  await Promise.all([leader.exited, follower.exited]);
  const survivors = agents.filter((a) => a !== leader && a !== follower);
  // The new leader records both nodes as down: new commits, the same on all three survivors.
  const after = await agreed(
    survivors,
    (v) =>
      v.raft.commit > (before?.raft.commit ?? 0) + 2 &&
      v.raft.stateDigest !== before?.raft.stateDigest,
    40_000,
  );
  t.is(new Set(after.map((v) => v.raft.stateDigest)).size, 1);
  t.not(after[0]?.raft.leader, before?.raft.leader);
});

test.serial(
  'two agents: one voter and one learner, so losing the second keeps the leader',
  async (t) => {
    const agents = await local.start(['127.0.17.1', '127.0.17.2'], 't');
    const [first, second] = agents as [AgentProcess, AgentProcess];
    const [settled] = await agreed(
      agents,
      (v) => v.raft.voters.length === 1 && v.raft.learners.length === 1,
      30_000,
    );
    t.is(settled?.raft.leader, (await view(first)).nodeId, 'the first node leads and is the voter');
    second.child.kill('SIGKILL');
    await second.exited;
    // Still the leader, and still committing: it records the second node as down.
    const [after] = await agreed(
      [first],
      (v) => v.raft.role === 'leader' && v.raft.commit > (settled?.raft.commit ?? 0),
      30_000,
    );
    t.is(after?.raft.leader, settled?.raft.leader);

    const { code, stdout, stderr } = await mesh(
      'node',
      'ls',
      '--json',
      '--data-dir',
      first.dataDir,
    );
    t.is(code, 0);
    t.is(stderr, '', 'a quorum of one: the list is consistent');
    t.is((JSON.parse(stdout) as unknown[]).length, 2);
  },
);

test.serial('without a quorum, node ls still answers and says the view may be stale', async (t) => {
  const agents = await local.start(['127.0.17.11', '127.0.17.12', '127.0.17.13'], 'q');
  await agreed(agents, (v) => v.raft.voters.length === 3, 30_000);
  const [lonely, ...others] = agents as [AgentProcess, ...AgentProcess[]];
  await stopAgents(others);
  const { code, stdout, stderr } = await mesh('node', 'ls', '--json', '--data-dir', lonely.dataDir);
  t.is(code, 0);
  t.is(stderr, 'mesh: no Raft quorum reachable: this is the local, possibly stale, view\n');
  t.is((JSON.parse(stdout) as unknown[]).length, 3);
  // Listings that must be current say that they cannot be, instead of an empty answer.
  for (const command of ['ls', 'ps']) {
    const refused = await mesh(command, '--data-dir', lonely.dataDir);
    t.is(refused.code, 4, `mesh ${command} fails: the agent cannot answer now`);
    t.regex(
      refused.stderr,
      /^mesh: this node cannot confirm that its copy of the cluster state is current \(.+\): no leader is reachable, or this node is behind/,
    );
    t.is(refused.stdout, '');
  }
});

test.serial(
  'storage: a torn tail is cut and the node catches up; damage in the middle keeps a voter from starting',
  async (t) => {
    const agents = await cluster('d', ['127.0.27.1', '127.0.27.2', '127.0.27.3']);
    const [a, , c] = agents as [AgentProcess, AgentProcess, AgentProcess];
    // Writes, so that the log holds more than the start-up entries.
    for (let i = 0; i < 5; i++)
      t.is(
        (await mesh('node', 'label', '127.0.27.1', `round=${i}`, '--data-dir', a.dataDir)).code,
        0,
      );
    await agreed(agents);
    const wal = join(c.dataDir, 'raft', 'wal');

    c.child.kill('SIGKILL');
    await c.exited;
    const whole = readFileSync(wal).length;
    truncateSync(wal, whole - 5); // the last record cut short, as a crash mid-write leaves it
    const torn = local.spawn('d3', ['agent']);
    agents[2] = torn;
    await waitForControl(torn);
    t.is(
      await mesh('node', 'label', '127.0.27.1', 'after=tear', '--data-dir', a.dataDir).then(
        (r) => r.code,
      ),
      0,
    );
    await agreed(agents);
    t.regex(
      readFileSync(`${c.dataDir}.log`, 'utf8'),
      /torn or corrupt tail cut off at the last valid record/,
    );

    torn.child.kill('SIGKILL');
    await torn.exited;
    const bytes = readFileSync(wal);
    const middle = Math.floor(bytes.length / 2);
    bytes.writeUInt32LE((bytes.readUInt32LE(middle) ^ 0xdeadbeef) >>> 0, middle);
    writeFileSync(wal, bytes);
    const damaged = local.spawn('d3', ['agent']);
    t.is(await damaged.exited, 1, 'the agent refuses to start');
    const log = readFileSync(`${c.dataDir}.log`, 'utf8');
    t.regex(
      log,
      new RegExp(
        `mesh: raft log ${wal} is damaged at byte \\d+ \\(.+\\): this node will not start on it`,
      ),
    );
    t.regex(log, /Remove it from the cluster \("mesh node rm NODE" on another node\)/);
    t.is(readFileSync(wal).length, bytes.length, 'nothing was cut off');
  },
);
