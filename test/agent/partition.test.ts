import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { Firewall } from '../helpers/firewall.js';
import {
  type AgentProcess,
  agreed,
  LocalCluster,
  logged,
  mesh,
  nodeIdOf,
  type RaftView,
  view,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

// Real partitions between real agents: iptables rules in this file's own chain, between this
// file's own loopback addresses (127.0.28.0/24: three nodes; 127.0.29.0/24: five), all removed
// after. Tasks are plain processes (no engine), so that duplicates can be counted in /proc.
process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
const THREE = ['127.0.28.1', '127.0.28.2', '127.0.28.3'];
const FIVE = ['127.0.29.1', '127.0.29.2', '127.0.29.3', '127.0.29.4', '127.0.29.5'];
const REPLICAS = 3;
/** How long a dead voter kept its seat before it was replaced, in older versions. */
const OLD_REPLACEMENT_MS = 30_000;

const cluster = await LocalCluster.create('partition');
const firewall = await Firewall.open('partition');
// A scenario that fails midway leaves no cut behind: the tests after it start from one cluster.
test.afterEach.always(() => firewall.heal());
test.after.always(async () => {
  await firewall.close();
  await cluster.close();
  // The agents were killed: their tasks were not stopped with them.
  for (const stack of ['part', 'split', 'once'])
    for (const pid of workerProcesses(stack)) process.kill(pid);
});

const hostOf = (agent: AgentProcess, hosts: string[], agents: AgentProcess[]) =>
  hosts[agents.indexOf(agent)] as string;

/** The `sleep` processes of the stack's worker service on this machine, from /proc. */
function workerProcesses(stack: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return (
          readFileSync(`/proc/${pid}/comm`, 'latin1') === 'sleep\n' &&
          readFileSync(`/proc/${pid}/environ`, 'latin1').includes(`MESH_TASK=${stack}.worker.`)
        );
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

/** The exit code of a worker that found its slot's lock taken: that slot was running already. */
const SLOT_TAKEN = 75;

/**
 * Three workers of a process stack. An at-most-once worker holds a lock of its replica slot (the
 * third part of its task ID) while it runs, so that two copies of one slot can never overlap
 * unseen; flock(1) is util-linux, on every machine these tests run on.
 */
function deployWorkers(agent: AgentProcess, stack: string, atMostOnce = false) {
  const file = join(cluster.root, `${stack}.yml`);
  const script = join(cluster.root, 'slot-locked.sh');
  writeFileSync(
    script,
    `slot=$(echo "$MESH_TASK" | cut -d. -f3)\nexec flock -n -E ${SLOT_TAKEN} "${cluster.root}/slot-$slot.lock" sleep 100000\n`,
  );
  const command = atMostOnce ? `["sh", "${script}"]` : '["sleep", "100000"]';
  writeFileSync(
    file,
    `name: ${stack}\nservices:\n  worker:\n    command: ${command}\n    deploy: { replicas: ${REPLICAS} }\n    x-mesh: { runtime: process, at_most_once: ${atMostOnce} }\n`,
  );
  return mesh('deploy', '-c', file, '--data-dir', agent.dataDir);
}

/** `mesh node label` of the target node, run on `on`. */
function label(on: AgentProcess, target: string, key: string) {
  return mesh('node', 'label', target, `${key}=set`, '--data-dir', on.dataDir);
}

async function labelsOf(on: AgentProcess, target: string): Promise<Record<string, string>> {
  // Right after healing, a read may still be refused for a moment (no confirmed leader yet).
  const stdout = await eventually(
    async () => {
      const answer = await mesh('node', 'inspect', target, '--data-dir', on.dataDir);
      return answer.code === 0 ? answer.stdout : undefined;
    },
    { what: `node inspect ${target} answering`, timeoutMs: 10_000, intervalMs: 200 },
  );
  return (JSON.parse(stdout as string) as { userLabels: Record<string, string> }).userLabels;
}

/**
 * The fewest voters the cluster had while `during` ran: its configuration before, and every change
 * any leader proposed meanwhile, read from all the agents' logs (each proposal is logged with its
 * voters), so that no change is missed between two looks.
 */
async function fewestVoters<T>(agents: AgentProcess[], during: () => Promise<T>) {
  const before = (await view(agents[0] as AgentProcess)).raft.voters.length;
  const from = Date.now();
  const result = await during();
  const to = Date.now();
  const proposed = agents
    .flatMap((agent) => logged(agent, 'raft membership change proposed', from))
    .filter((change) => change.time <= to);
  return {
    result,
    fewest: () => Math.min(before, ...proposed.map((change) => (change.voters as string[]).length)),
  };
}

/**
 * What must hold once a partition heals: one leader and one state within 10 s, every write that
 * was acknowledged kept, every write answered "not applied" absent, no duplicate task 10 s on.
 */
async function healed(
  t: ExecutionContext,
  agents: AgentProcess[],
  target: string,
  writes: { acknowledged: string[]; refused: string[] },
  stack: string,
): Promise<RaftView[]> {
  await firewall.heal();
  const views = await agreed(agents, () => true, 10_000);
  const labels = await labelsOf(agents[0] as AgentProcess, target);
  for (const key of writes.acknowledged) t.is(labels[key], 'set', `acknowledged write ${key} kept`);
  for (const key of writes.refused)
    t.is(labels[key], undefined, `refused write ${key} not applied`);
  await eventually(() => workerProcesses(stack).length === REPLICAS, {
    what: `exactly ${REPLICAS} ${stack} workers running`,
    timeoutMs: 10_000,
    intervalMs: 200,
  });
  return views;
}

/** A write on the minority side fails; when it says it was not applied, it must not be. */
async function minorityWrite(t: ExecutionContext, on: AgentProcess, target: string, key: string) {
  const answer = await label(on, target, key);
  t.log(`minority write: ${answer.stderr.trim()}`);
  t.not(answer.code, 0, 'a minority cannot write');
  t.regex(answer.stderr, /not applied|may or may not have been applied|cannot confirm/);
  return /may or may not/.test(answer.stderr) ? [] : [key];
}

let three: AgentProcess[] = [];
let target = '';

test.before(async () => {
  three = await cluster.start(THREE, 'p', ['--reschedule-after', '2s']);
  await agreed(three, (v) => v.raft.voters.length === 3, 60_000);
  target = await nodeIdOf(three[0] as AgentProcess);
  const deployed = await deployWorkers(three[0] as AgentProcess, 'part');
  if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr}`);
});

async function leaderOf(agents: AgentProcess[]): Promise<{ leader: AgentProcess; term: number }> {
  const views = await agreed(agents);
  const id = views[0]?.raft.leader;
  const index = views.findIndex((v) => v.nodeId === id);
  return { leader: agents[index] as AgentProcess, term: views[0]?.raft.term ?? 0 };
}

test.serial(
  'an isolated leader is replaced; its writes are refused; all is one again after the heal',
  async (t) => {
    const { leader } = await leaderOf(three);
    const others = three.filter((a) => a !== leader);
    const [stay] = others as [AgentProcess];
    const { result: writes, fewest } = await fewestVoters(three, async () => {
      await firewall.split(
        [hostOf(leader, THREE, three)],
        others.map((a) => hostOf(a, THREE, three)),
      );
      const refused = await minorityWrite(t, leader, target, 'isolated-leader-minority');
      await eventually(async () => (await label(stay, target, 'isolated-leader')).code === 0, {
        what: 'a write on the majority side',
        timeoutMs: 20_000,
        intervalMs: 500,
      });
      return { acknowledged: ['isolated-leader'], refused };
    });
    await healed(t, three, target, writes, 'part');
    t.is(fewest(), 3, 'three voters all along');
  },
);

test.serial(
  'a follower isolated longer than the old 30 s replacement keeps its seat',
  async (t) => {
    const { leader } = await leaderOf(three);
    const [cut] = three.filter((a) => a !== leader) as [AgentProcess];
    const cutId = await nodeIdOf(cut);
    const { result: writes, fewest } = await fewestVoters(three, async () => {
      const cutAt = Date.now();
      await firewall.split(
        [hostOf(cut, THREE, three)],
        three.filter((a) => a !== cut).map((a) => hostOf(a, THREE, three)),
      );
      const refused = await minorityWrite(t, cut, target, 'isolated-follower-minority');
      t.is((await label(leader, target, 'isolated-follower')).code, 0);
      // Once its link to the leader is known dead (closed after the transport's silence limit),
      // a write cannot even leave, and says so. Until then one is sent and not confirmed: the
      // cut drops it, so no attempt is applied either way.
      const unsent = await eventually(
        async () => {
          const answer = await label(cut, target, 'isolated-follower-unsent');
          return /^mesh: the write was not applied: /.test(answer.stderr) && answer;
        },
        { what: 'a write of the cut node refused as not sent', timeoutMs: 30_000, intervalMs: 500 },
      );
      t.not(unsent.code, 0);
      const dead = await eventually(
        () =>
          logged(leader, 'member changed', cutAt).find(
            (event) => event.member === cutId && event.status === 'dead',
          ),
        { what: 'the leader declaring the cut node dead', timeoutMs: 30_000 },
      );
      // How long it stays away is the scenario: past the old replacement time, counted from when
      // it was declared dead.
      await sleep(dead.time + OLD_REPLACEMENT_MS + 2000 - Date.now());
      return {
        acknowledged: ['isolated-follower'],
        refused: [...refused, 'isolated-follower-unsent'],
      };
    });
    const views = await healed(t, three, target, writes, 'part');
    t.is(fewest(), 3, 'three voters all along');
    t.is(views[0]?.raft.voters.length, 3);
  },
);

test.serial(
  'a one-way drop from the leader to a follower: no new leader, nothing lost',
  async (t) => {
    const { leader, term } = await leaderOf(three);
    const [deaf] = three.filter((a) => a !== leader) as [AgentProcess];
    const cutAt = Date.now();
    await firewall.cut(hostOf(leader, THREE, three), hostOf(deaf, THREE, three), true);
    t.is((await label(leader, target, 'one-way')).code, 0);
    // The drop lasts until the deaf follower's election timeout has fired: it stops following
    // the leader and asks the others for a pre-vote, which they must not grant.
    await eventually(
      () =>
        logged(deaf, 'raft leader changed', cutAt).some(
          (event) => event.leader === null && event.role === 'pre-candidate',
        ),
      { what: 'the deaf follower campaigning', timeoutMs: 20_000 },
    );
    const views = await healed(
      t,
      three,
      target,
      { acknowledged: ['one-way'], refused: [] },
      'part',
    );
    t.is(views[0]?.raft.leader, (await view(leader)).nodeId, 'the same leader');
    t.is(views[0]?.raft.term, term, 'no election');
  },
);

test.serial(
  'a link between the leader and a follower flapping every 3 s: no leadership flapping',
  async (t) => {
    const { leader, term } = await leaderOf(three);
    const [other] = three.filter((a) => a !== leader) as [AgentProcess];
    const acknowledged: string[] = [];
    for (let round = 0; round < 5; round++) {
      if (round % 2 === 0)
        await firewall.cut(hostOf(leader, THREE, three), hostOf(other, THREE, three));
      else await firewall.heal();
      const key = `flap-${round}`;
      if ((await label(leader, target, key)).code === 0) acknowledged.push(key);
      await new Promise((resolve) => setTimeout(resolve, 3000)); // the link's rhythm, by design
    }
    t.true(acknowledged.length > 0);
    const views = await healed(t, three, target, { acknowledged, refused: [] }, 'part');
    t.is(views[0]?.raft.term, term, 'no election');
  },
);

test.serial('an at-most-once service never runs twice, even while a node is cut off', async (t) => {
  const since = Date.now();
  const deployed = await deployWorkers(three[0] as AgentProcess, 'once', true);
  t.is(deployed.code, 0, deployed.stderr);
  const { leader } = await leaderOf(three);
  const [cut] = three.filter((a) => a !== leader) as [AgentProcess];
  await firewall.split(
    [hostOf(cut, THREE, three)],
    three.filter((a) => a !== cut).map((a) => hostOf(a, THREE, three)),
  );
  // The cut node's copy stops by itself, and only then may the leader start a replacement.
  await eventually(() => workerProcesses('once').length === REPLICAS - 1, {
    what: 'the cut-off copy stopped',
    timeoutMs: 10_000,
    intervalMs: 50,
  });
  await eventually(() => workerProcesses('once').length === REPLICAS, {
    what: 'a replacement started on the connected side',
    timeoutMs: 20_000,
    intervalMs: 100,
  });
  await healed(t, three, target, { acknowledged: [], refused: [] }, 'once');
  // Every copy holds its slot's lock for as long as it runs: a second copy of a slot started
  // while the first still ran, even for a moment, found the lock taken and ended with SLOT_TAKEN.
  const overlapping = three
    .flatMap((agent) => logged(agent, 'task ended', since))
    .filter((event) => String(event.task).startsWith('once.worker.'))
    .filter((event) => event.exitCode === SLOT_TAKEN);
  t.deepEqual(overlapping, [], 'no slot ever ran twice at once');
});

test.serial(
  'five nodes split 2|3 with the leader on the small side: the three go on',
  async (t) => {
    const five = await cluster.start(FIVE, 'q', ['--reschedule-after', '2s']);
    await agreed(five, (v) => v.raft.voters.length === 5, 60_000);
    const fiveTarget = await nodeIdOf(five[0] as AgentProcess);
    const deployed = await deployWorkers(five[0] as AgentProcess, 'split');
    t.is(deployed.code, 0, deployed.stderr);
    const { leader } = await leaderOf(five);
    const small = [leader, five.find((a) => a !== leader) as AgentProcess];
    const large = five.filter((a) => !small.includes(a));
    const [stay] = large as [AgentProcess];
    const { result: writes, fewest } = await fewestVoters(five, async () => {
      await firewall.split(
        small.map((a) => hostOf(a, FIVE, five)),
        large.map((a) => hostOf(a, FIVE, five)),
      );
      const refused = await minorityWrite(t, leader, fiveTarget, 'split-minority');
      await eventually(async () => (await label(stay, fiveTarget, 'split')).code === 0, {
        what: 'a write on the side of three',
        timeoutMs: 20_000,
        intervalMs: 500,
      });
      return { acknowledged: ['split'], refused };
    });
    await healed(t, five, fiveTarget, writes, 'split');
    t.is(fewest(), 5, 'five voters all along');
  },
);
