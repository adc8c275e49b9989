/**
 * A member that misbehaves on the wire with nothing but its own valid certificate: real agents on
 * this file's loopback block (127.0.57.0/24), and frames packed by hand with msgpackr, sent over a
 * WebSocket the test opens itself (none of the project's transport code on the sending side).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { Packr } from 'msgpackr';
import { WebSocket } from 'ws';
import type { NodeRow, StackRow } from '../../agent/control/api.js';
import {
  type AgentProcess,
  LocalCluster,
  meshJson,
  nodeIdOf,
  type RaftView,
  view,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

const HOSTS = ['127.0.57.1', '127.0.57.2', '127.0.57.3', '127.0.57.4'];
const cluster = await LocalCluster.create('hostile');
test.after.always(() => cluster.close());
const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const MESSAGE = 0;

interface Roles {
  agents: AgentProcess[];
  leader: RaftView;
  learner: RaftView;
  leaderAgent: AgentProcess;
  learnerAgent: AgentProcess;
}
let roles: Roles;

/** The cluster settled: four nodes recorded, three voters, one learner, one leader. */
test.before(async () => {
  const agents = await cluster.start(HOSTS, 'h');
  const found = await eventually(
    async () => {
      const views = await Promise.all(agents.map(view));
      const leader = views.find((v) => v.raft.role === 'leader');
      const learner = views.find((v) => v.raft.learners.includes(v.nodeId));
      const nodes = await meshJson<NodeRow[]>(agents[0] as AgentProcess, 'node', 'ls');
      const ready = nodes.length === 4 && nodes.every((n) => n.status === 'alive' && n.recorded);
      return leader && learner && ready && leader.raft.voters.length === 3
        ? { leader, learner }
        : undefined;
    },
    { what: 'three voters and a learner', timeoutMs: 40_000, intervalMs: 250 },
  );
  const { leader, learner } = found as NonNullable<typeof found>;
  const agentOf = async (nodeId: string) => {
    for (const agent of agents) if ((await nodeIdOf(agent)) === nodeId) return agent;
    throw new Error(`no agent is node ${nodeId}`);
  };
  roles = {
    agents,
    leader,
    learner,
    leaderAgent: await agentOf(leader.nodeId),
    learnerAgent: await agentOf(learner.nodeId),
  };
});

/** A WebSocket to the agent's cluster port with the learner's own key and certificate. */
async function asTheLearner(to: AgentProcess): Promise<WebSocket> {
  const pki = (file: string) => readFileSync(join(roles.learnerAgent.dataDir, 'pki', file), 'utf8');
  const cluster = JSON.parse(readFileSync(join(to.dataDir, 'cluster.json'), 'utf8')) as {
    advertise: string;
    port: number;
  };
  // ws passes these to tls.connect; its typings know only its own options.
  const tls = {
    key: pki('node.key'),
    cert: pki('node.crt'),
    ca: pki('ca.crt'),
    localAddress: '127.0.57.4',
    checkServerIdentity: () => undefined,
  };
  const ws = new WebSocket(
    `wss://${cluster.advertise}:${cluster.port}/mesh/v1`,
    tls as unknown as ConstructorParameters<typeof WebSocket>[1],
  );
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return ws;
}

const leaderLog = () => readFileSync(`${roles.leaderAgent.dataDir}.log`, 'utf8');

test.serial(
  'a learner that sends Raft messages only voters may send changes nothing',
  async (t) => {
    const { leaderAgent, learnerAgent, learner } = roles;
    const before: RaftView = await view(leaderAgent);
    const ws = await asTheLearner(leaderAgent);
    t.teardown(() => ws.close());
    const term = before.raft.term + 5;
    const envelope = { from: learner.nodeId, to: before.nodeId, term };
    const stack = { name: 'evil', services: [], deployedAt: new Date().toISOString() };
    const forged = [
      {
        ...envelope,
        type: 'append',
        prevIndex: before.raft.commit,
        prevTerm: before.raft.term,
        entries: [
          {
            index: before.raft.commit + 1,
            term,
            kind: 'command',
            data: { op: 'put', kind: 'stacks', id: 'evil', value: stack },
          },
        ],
        commit: before.raft.commit + 1,
        seq: 1,
      },
      { ...envelope, type: 'vote', lastIndex: 1e6, lastTerm: term, transfer: true },
      { ...envelope, type: 'prevote', lastIndex: 1e6, lastTerm: term, transfer: true },
      { ...envelope, type: 'timeout-now' },
      {
        ...envelope,
        type: 'snapshot',
        seq: 1,
        snapshot: {
          index: before.raft.commit + 10,
          term,
          membership: { voters: [learner.nodeId], learners: [] },
          data: null,
        },
      },
      {
        ...envelope,
        type: 'append-resp',
        reject: false,
        index: 1,
        hintIndex: 0,
        hintTerm: 0,
        seq: 1,
      },
    ];
    for (const message of forged) ws.send(packr.pack([MESSAGE, 'raft', message]));
    await eventually(
      () =>
        ['append', 'vote', 'prevote', 'timeout-now', 'snapshot', 'append-resp'].every((type) =>
          leaderLog().includes(`"type":"${type}","term":${term}`),
        ),
      { what: 'each forged message refused with its type and term', timeoutMs: 10_000 },
    );
    const line = leaderLog()
      .split('\n')
      .find((l) => l.includes('"type":"append","term"'));
    t.regex(line ?? '', /"msg":"Raft message refused"/);
    t.regex(line ?? '', /is a learner: only voters send append messages/);
    const after = await view(leaderAgent);
    t.is(after.raft.role, 'leader', 'the leader did not step down');
    t.is(after.raft.term, before.raft.term, 'nor take the term');
    const stacks = await meshJson<StackRow[]>(leaderAgent, 'ls');
    t.false(
      stacks.some((s) => s.name === 'evil'),
      'no stack written',
    );
    t.false(
      (await meshJson<StackRow[]>(learnerAgent, 'ls')).some((s) => s.name === 'evil'),
      'not even on the learner',
    );
  },
);
