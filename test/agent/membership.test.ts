import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { NodeRow } from '../../agent/control/api.js';
import {
  type AgentProcess,
  LocalCluster,
  mesh,
  nodesSeenBy,
  waitForControl,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

// This file's loopback block: 127.0.14.0/24; five real agent processes.
const HOSTS = ['127.0.14.1', '127.0.14.2', '127.0.14.3', '127.0.14.4', '127.0.14.5'];
const cluster = await LocalCluster.create('membership');
const { root } = cluster;
/** The cluster's agents as they are now: a restarted one takes its predecessor's place. */
const agents: AgentProcess[] = [];
test.after.always(() => cluster.close());

/** Polls every other agent until each sees `address` in `status`. */
async function seenEverywhere(
  address: string,
  status: string,
  timeoutMs: number,
  observers: AgentProcess[],
) {
  await eventually(
    async () => {
      const views = await Promise.all(observers.map((a) => nodesSeenBy(a.dataDir)));
      return views.every((nodes) => nodes.find((n) => n.address === address)?.status === status);
    },
    { what: `${address} ${status} everywhere`, timeoutMs, intervalMs: 200 },
  );
}

test.serial('five agents: crash is detected, restart rejoins, leaving is not dying', async (t) => {
  agents.push(...(await cluster.start(HOSTS, 'a')));
  await eventually(
    async () => {
      const views = await Promise.all(agents.map((a) => nodesSeenBy(a.dataDir)));
      return views.every((nodes) => nodes.filter((n) => n.status === 'alive').length === 5);
    },
    { what: 'all five alive everywhere', timeoutMs: 15_000, intervalMs: 200 },
  );
  // The seed's output goes to a file, as a service's would: the join secret must not be in it.
  const seedLog = readFileSync(`${(agents[0] as AgentProcess).dataDir}.log`, 'utf8');
  t.false(seedLog.includes('MESH-1-'), 'no join token in a log');
  t.regex(seedLog, /the join token is not printed here \(not a terminal\); "mesh token" prints it/);

  // kill -9: no goodbye, so the others must find out by probing.
  const victim = agents[2] as AgentProcess;
  const victimRow = (await nodesSeenBy(victim.dataDir)).find((n) => n.self) as NodeRow;
  victim.child.kill('SIGKILL');
  await victim.exited;
  const others = agents.filter((a) => a !== victim);
  await seenEverywhere(victimRow.address, 'dead', 20_000, others);

  // Restart from its data dir: same identity, alive again everywhere.
  const restarted = cluster.spawn('a3', ['agent']);
  agents[2] = restarted;
  await waitForControl(restarted);
  // Generous: under CI load (every test file's agents and containers at once) rejoining has
  // taken over 15 s; this asserts that it happens, not how fast.
  await seenEverywhere(victimRow.address, 'alive', 30_000, others);
  const again = (await nodesSeenBy(restarted.dataDir)).find((n) => n.self);
  t.is(again?.id, victimRow.id, 'the restarted agent kept its node ID');

  // SIGTERM: a graceful leave, shown as left and never as dead.
  const leaver = agents[3] as AgentProcess;
  const leaverRow = (await nodesSeenBy(leaver.dataDir)).find((n) => n.self) as NodeRow;
  leaver.child.kill('SIGTERM');
  t.is(await leaver.exited, 0, 'the agent exits cleanly after leaving');
  const stayers = agents.filter((a) => a !== leaver);
  await seenEverywhere(leaverRow.address, 'left', 20_000, stayers);
  for (const agent of stayers) {
    const row = (await nodesSeenBy(agent.dataDir)).find((n) => n.address === leaverRow.address);
    t.is(row?.status, 'left');
  }
});

test.serial('user mistakes get one clear line', async (t) => {
  const first = agents[0] as AgentProcess;
  // Each with its exit code: refused 1, a wrong command line 2, no agent to ask 4.
  const cases: Array<[string[], RegExp, number]> = [
    [
      ['init', '--advertise', '127.0.14.9', '--data-dir', first.dataDir],
      /^mesh: .* already holds node n[0-9a-f]+ of cluster c[0-9a-f]+; start it with "mesh agent/,
      1,
    ],
    [
      ['init', '--advertise', HOSTS[0] as string, '--data-dir', `${root}/taken`],
      /^mesh: port 7946 on 127\.0\.14\.1 is taken \(another mesh agent\?\); choose one with --port\n$/,
      1,
    ],
    [
      ['join', 'MESH-1-abc.def', '--advertise', '127.0.14.10', '--data-dir', `${root}/damaged`],
      /^mesh: join token is damaged \(its checksum does not match\): copy it again, whole\n$/,
      1,
    ],
    [
      ['node', 'ls', '--data-dir', `${root}/nobody`],
      /^mesh: no mesh agent is running with data dir/,
      4,
    ],
    [
      ['node', 'ls', '--colour'],
      /^mesh: node ls: unknown option --colour; see "mesh node ls --help"\n$/,
      2,
    ],
  ];
  for (const [args, message, exitCode] of cases) {
    const { code, stderr } = await mesh(...args);
    t.is(code, exitCode, args.join(' '));
    t.regex(stderr, message);
    t.notRegex(stderr, /\n\s+at /, 'no stack trace');
  }
  t.false(
    existsSync(join(root, 'taken', 'cluster.json')),
    'the failed init wrote no cluster that would refuse a retry',
  );
});

test.serial(
  'rotating the join secret: the old token admits no one, the new one does',
  async (t) => {
    const first = agents[0] as AgentProcess;
    const old = (await mesh('token', '--data-dir', first.dataDir)).stdout.trim();
    const rotated = await mesh('token', '--rotate', '--data-dir', first.dataDir);
    t.is(rotated.code, 0);
    t.is(
      rotated.stderr,
      'mesh: manager join secret rotated; earlier manager tokens no longer work\n',
    );
    const fresh = rotated.stdout.trim();
    t.not(fresh, old);

    const refused = await mesh(
      'join',
      old,
      '--advertise',
      '127.0.14.20',
      '--data-dir',
      `${root}/late`,
    );
    t.is(refused.code, 1);
    t.regex(refused.stderr, /wrong join secret/);

    const late = cluster.spawn('late', ['join', fresh, '--advertise', '127.0.14.20']);
    agents.push(late);
    await waitForControl(late);
    t.is((await nodesSeenBy(late.dataDir)).find((n) => n.self)?.status, 'alive');
  },
);

test.serial(
  'a fault nothing handled: one fatal log line naming it, and the agent exits 1',
  async (t) => {
    // The leaver of the first test, started again with a fault planted: SIGUSR2 throws in a
    // signal handler, outside anything the agent could catch.
    const planted = `data:text/javascript,${encodeURIComponent(
      "process.on('SIGUSR2', () => { throw new Error('planted fault'); });",
    )}`;
    const before = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `--import=${planted}`;
    const faulty = cluster.spawn('a4', ['agent']);
    if (before === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = before;
    await waitForControl(faulty);
    faulty.child.kill('SIGUSR2');
    t.is(await faulty.exited, 1);
    const lines = readFileSync(`${faulty.dataDir}.log`, 'utf8').trim().split('\n');
    const fatal = lines
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line))
      .filter((entry) => entry.level === 60);
    t.is(fatal.length, 1);
    t.is(fatal[0]?.err?.message, 'planted fault');
    t.is(fatal[0]?.origin, 'uncaughtException');
    t.regex(fatal[0]?.msg ?? '', /nothing handled; exiting/);
  },
);
