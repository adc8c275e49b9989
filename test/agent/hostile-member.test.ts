/**
 * A member that misbehaves on the wire with nothing but its own valid certificate, and a thief with
 * the CA key: real agents on this file's loopback block (127.0.57.0/24), frames packed by hand with
 * msgpackr and sent over a WebSocket the test opens itself, certificates made by openssl (none of
 * the project's transport or signing code on the sending side).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import type { NodeRow, StackRow } from '../../agent/control/api.js';
import type { AuthoritySetting } from '../../mesh/api/authority.js';
import { open } from '../../mesh/secrets/sealing.js';
import { openBackup, parseBackup, settingIn } from '../../mesh/state/backup.js';
import {
  type AgentProcess,
  LocalCluster,
  meshJson,
  meshOn,
  nodeIdOf,
  nodesSeenBy,
  type RaftView,
  view,
  waitForControl,
} from '../helpers/local-cluster.js';
import {
  ask,
  type Credentials,
  connected,
  connectAs as connectFrom,
  credentialsOf,
  MESSAGE,
  packr,
  REQUEST,
} from '../helpers/member-socket.js';
import { eventually } from '../helpers/poll.js';

const HOSTS = ['127.0.57.1', '127.0.57.2', '127.0.57.3', '127.0.57.4'];
const LEARNER = '127.0.57.4';
const cluster = await LocalCluster.create('hostile');
test.after.always(() => cluster.close());

interface Roles {
  agents: AgentProcess[];
  leader: RaftView;
  learner: RaftView;
  leaderAgent: AgentProcess;
  learnerAgent: AgentProcess;
}
let roles: Roles;

/**
 * The cluster settled: three nodes joined with the manager token and seated, a fourth with a worker
 * token (a learner for good), all recorded, one leader.
 */
test.before(async () => {
  const agents = await cluster.start(HOSTS.slice(0, 3), 'h');
  const worker = await meshOn(agents[0] as AgentProcess, 'token', '--worker');
  if (worker.code !== 0) throw new Error(`no worker token: ${worker.stderr}`);
  const joining = cluster.spawn('h4', [
    'join',
    worker.stdout.trim(),
    '--advertise',
    HOSTS[3] as string,
    '--dns-upstream',
    'none',
  ]);
  await waitForControl(joining);
  agents.push(joining);
  const found = await eventually(
    async () => {
      const views = await Promise.all(agents.map(view));
      const leader = views.find((v) => v.raft.role === 'leader');
      // The node that joined with the worker token, as the leader sees it (a manager's own view
      // may still show it a learner for a moment after the leader seated it).
      const worker = views[3];
      const learner = worker && leader?.raft.learners.includes(worker.nodeId) ? worker : undefined;
      const nodes = await nodesSeenBy((agents[0] as AgentProcess).dataDir);
      const ready = nodes.length === 4 && nodes.every((n) => n.status === 'alive' && n.recorded);
      return leader && learner && ready && leader.raft.voters.length === 3
        ? { leader, learner }
        : undefined;
    },
    { what: 'three voters and a worker', timeoutMs: 40_000, intervalMs: 250 },
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

/** The learner's own key and certificate, from its data dir. */
const learnerCredentials = () => credentialsOf(roles.learnerAgent);
const connectAs = (to: AgentProcess, credentials: Credentials) =>
  connectFrom(to, credentials, LEARNER);
const asTheLearner = (to: AgentProcess) => connected(to, learnerCredentials(), LEARNER);

/** A scratch directory for openssl's files, removed with the cluster's. */
const scratch = mkdtempSync(join(tmpdir(), 'mesh-hostile-pki-'));
test.after.always(() => execFileSync('rm', ['-rf', scratch]));

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: scratch, stdio: 'pipe' });
}

/** A new RSA key and a CSR for it, made by openssl. */
function opensslRequest(
  name: string,
  subject = '/CN=anything',
): { keyPem: string; csrPem: string } {
  openssl(
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-subj',
    subject,
    '-out',
    `${name}.csr`,
  );
  return {
    keyPem: readFileSync(join(scratch, `${name}.key`), 'utf8'),
    csrPem: readFileSync(join(scratch, `${name}.csr`), 'utf8'),
  };
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

test.serial(
  'a node that joined with a worker token is never seated, never holds the voters’ key, hands out no token',
  async (t) => {
    const { agents, learnerAgent, learner } = roles;
    const nodes = await meshJson<NodeRow[]>(agents[0] as AgentProcess, 'node', 'ls');
    t.like(
      nodes.find((n) => n.id === learner.nodeId),
      { token: 'worker', raft: 'learner' },
    );
    t.deepEqual(
      nodes.filter((n) => n.token === 'manager').map((n) => n.raft),
      ['voter', 'voter', 'voter'],
    );
    const status = await view(learnerAgent);
    t.is(status.raft.targetVoters, 3, 'the worker counts for no seat');
    for (const agent of agents) {
      const holds = existsSync(join(agent.dataDir, 'pki', 'secrets.key'));
      t.is(
        holds,
        agent !== learnerAgent,
        `${agent.dataDir}: voters' key ${holds ? 'held' : 'absent'}`,
      );
    }
    const token = await meshOn(learnerAgent, 'token');
    t.not(token.code, 0);
    t.regex(token.stderr, /joined with a worker token: it hands out no tokens/);
    const ws = await asTheLearner(roles.leaderAgent);
    t.teardown(() => ws.close());
    await t.throwsAsync(ask(ws, 11, 'keys.fetch', {}), {
      message: /joined with a worker token: the voters' key is never handed to it/,
    });
    await t.throwsAsync(ask(ws, 12, 'authority.token', { kind: 'manager' }), {
      message: /hands out no tokens/,
    });
  },
);

test.serial(
  'random and mutated frames from a member never crash the agent nor change desired state',
  async (t) => {
    const { leaderAgent, learner } = roles;
    const types = [
      'raft',
      'raft.propose',
      'raft.read-index',
      'swim',
      'keys.fetch',
      'authority.renew',
      'logs',
      'ingress.open-key',
      'no.such.type',
    ];
    const body = fc.oneof(fc.jsonValue(), fc.uint8Array({ maxLength: 64 }));
    const raftMessage = fc.record({
      type: fc.constantFrom(
        'append',
        'snapshot',
        'vote',
        'prevote',
        'vote-resp',
        'append-resp',
        'timeout-now',
      ),
      from: fc.constantFrom(learner.nodeId, 'n-somebody-else'),
      to: fc.constant(roles.leader.nodeId),
      term: fc.oneof(fc.nat(), fc.constant(-1), fc.double()),
      prevIndex: fc.oneof(fc.nat(), fc.jsonValue()),
      entries: fc.oneof(fc.array(fc.jsonValue(), { maxLength: 3 }), fc.jsonValue()),
      commit: fc.oneof(fc.nat(), fc.jsonValue()),
      snapshot: fc.jsonValue(),
    });
    const frame = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 256 }).map((bytes) => Buffer.from(bytes)),
      fc.tuple(fc.constant(MESSAGE), fc.constantFrom(...types), body).map((f) => packr.pack(f)),
      fc
        .tuple(
          fc.constant(REQUEST),
          fc.integer({ min: -1, max: 5 }),
          fc.constantFrom(...types),
          body,
        )
        .map((f) => packr.pack(f)),
      fc.tuple(fc.constant(MESSAGE), fc.constant('raft'), raftMessage).map((f) => packr.pack(f)),
      fc
        .tuple(fc.constant(4), fc.boolean(), fc.uint8Array({ maxLength: 64 }))
        .map((f) => packr.pack(f)),
      fc.jsonValue().map((v) => packr.pack(v)),
    );
    const before = await view(leaderAgent);
    const from = leaderLog().length;
    let probe = 1000;
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 20 }), async (frames) => {
        const ws = await asTheLearner(leaderAgent);
        try {
          for (const bytes of frames) if (ws.readyState === WebSocket.OPEN) ws.send(bytes);
        } finally {
          ws.close();
        }
        // The agent still answers a well-formed request of the same member.
        const fresh = await asTheLearner(leaderAgent);
        try {
          const index = await ask(fresh, probe++, 'raft.read-index', null);
          return typeof (index as { value?: unknown }).value === 'number';
        } finally {
          fresh.close();
        }
      }),
      { numRuns: 40 },
    );
    const after = await view(leaderAgent);
    t.is(after.raft.term, before.raft.term, 'no forged term taken');
    t.is(after.raft.role, 'leader');
    t.deepEqual(await meshJson<StackRow[]>(leaderAgent, 'ls'), [], 'no desired state written');
    // What the member caused is logged a line a minute per kind, not a line per frame.
    const lines = leaderLog()
      .slice(from)
      .split('\n')
      .filter((l) => l.includes(learner.nodeId) && l.includes('"level":40'));
    const perKind = new Map<string, number>();
    for (const line of lines) {
      const msg = (JSON.parse(line) as { msg: string; type?: string }).msg;
      perKind.set(msg, (perKind.get(msg) ?? 0) + 1);
    }
    t.log(Object.fromEntries(perKind));
    for (const [msg, count] of perKind) t.true(count <= 12, `${count} lines of "${msg}"`);
  },
);

/** The cluster CA's key, as a thief of a voter's data dir gets it: a backup and pki/secrets.key. */
async function stolenCa(): Promise<{ keyPem: string; certPem: string }> {
  const { leaderAgent } = roles;
  const file = join(scratch, 'stolen.backup');
  const made = await meshOn(leaderAgent, 'backup', file);
  if (made.code !== 0) throw new Error(`backup failed: ${made.stderr}`);
  const votersKey = Buffer.from(
    readFileSync(join(leaderAgent.dataDir, 'pki', 'secrets.key'), 'utf8').trim(),
    'hex',
  );
  const contents = openBackup(parseBackup(readFileSync(file, 'utf8'), file), file, { votersKey });
  const ca = settingIn<AuthoritySetting>(contents.objects, 'ca') as AuthoritySetting;
  return { keyPem: open(votersKey, ca.sealedKey).toString(), certPem: ca.certPem };
}

test.serial(
  'a certificate made with the CA key for a live member, under a serial never issued, is refused',
  async (t) => {
    const { leaderAgent, learner } = roles;
    const ca = await stolenCa();
    writeFileSync(join(scratch, 'ca.key'), ca.keyPem);
    writeFileSync(join(scratch, 'ca.crt'), ca.certPem);
    writeFileSync(
      join(scratch, 'node.ext'),
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n',
    );
    const clusterId = (await view(leaderAgent)).clusterId;
    const { keyPem } = opensslRequest('forged', `/O=${clusterId}/OU=node/CN=${learner.nodeId}`);
    const serial = `7${randomBytes(15).toString('hex')}`;
    openssl(
      'x509',
      '-req',
      '-in',
      'forged.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      `0x${serial}`,
      '-days',
      '1',
      '-extfile',
      'node.ext',
      '-out',
      'forged.crt',
    );
    const cert = readFileSync(join(scratch, 'forged.crt'), 'utf8');
    const refusal = await connectAs(leaderAgent, { key: keyPem, cert });
    t.is(typeof refusal, 'string', 'refused');
    t.regex(
      String(refusal),
      new RegExp(`certificate ${serial} was never issued to node ${learner.nodeId}`),
    );
    t.true(
      typeof (await connectAs(leaderAgent, learnerCredentials())) !== 'string',
      'the real one is still honoured',
    );
  },
);

test.serial(
  'node rm cuts a member off for good: every certificate it holds, its live connections',
  async (t) => {
    const { leaderAgent, learnerAgent, learner } = roles;
    // Before it is removed, the member asks for a second certificate, with a key of its own.
    const ws = await asTheLearner(leaderAgent);
    const second = opensslRequest('second');
    const certPem = String(await ask(ws, 1, 'authority.renew', { csrPem: second.csrPem }));
    const other = await connectAs(leaderAgent, { key: second.keyPem, cert: certPem });
    if (typeof other === 'string') throw new Error(`the second certificate was refused: ${other}`);
    const closed = new Promise<number>((resolve) => other.once('close', (code) => resolve(code)));

    const removed = await meshOn(leaderAgent, 'node', 'rm', learner.nodeId, '--force');
    t.is(removed.code, 0, removed.stderr);
    t.is(await closed, 4003, 'its live connection is closed at once');
    for (const credentials of [learnerCredentials(), { key: second.keyPem, cert: certPem }]) {
      const refusal = await connectAs(leaderAgent, credentials);
      t.regex(String(refusal), /is revoked: the node was removed/);
    }
    const token = await meshOn(learnerAgent, 'token');
    t.not(token.code, 0, 'and it gets no token');
  },
);
