/**
 * The CLI from elsewhere: `mesh operator add` on a manager makes a context; `mesh --context FILE`
 * then runs commands on the cluster over mTLS as that operator, from another address and with no
 * local agent. A client without a certificate, with a node's, with a revoked or an expired
 * operator's is refused, saying why. A manager on 127.0.79.1 and a worker on 127.0.79.2.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import test from 'ava';
import type { OperatorContext, OperatorRow, StatusResponse } from '../../agent/control/api.js';
import { startDashboard } from '../helpers/dashboard.js';
import {
  type AgentProcess,
  LocalCluster,
  logged,
  mesh,
  meshJson,
  meshOn,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

const HOSTS = ['127.0.79.1', '127.0.79.2'];
const cluster = await LocalCluster.create('remote');
test.after.always(() => cluster.close());

let manager: AgentProcess;
let alice = '';

test.before(async () => {
  [manager] = (await cluster.start(HOSTS, 'rc')) as [AgentProcess, AgentProcess];
  alice = join(cluster.root, 'alice.json');
  const added = await meshOn(manager, 'operator', 'add', 'alice', '-o', alice);
  if (added.code !== 0) throw new Error(added.stderr);
});

/** The CLI as an operator elsewhere: a context, and no agent of its own to fall back on. */
function remote(context: string, ...args: string[]) {
  return mesh('--context', context, ...args, '--data-dir', join(cluster.root, 'no-agent-here'));
}

/** A context like alice's, with another certificate and key. */
function contextWith(name: string, certPem: string, keyPem: string): string {
  const context = JSON.parse(readFileSync(alice, 'utf8')) as OperatorContext;
  return cluster.file(`${name}.json`, JSON.stringify({ ...context, cert: certPem, key: keyPem }));
}

test.serial(
  'an operator reads and changes the cluster from elsewhere, as a manager would',
  async (t) => {
    const context = JSON.parse(readFileSync(alice, 'utf8')) as OperatorContext;
    t.deepEqual(context.endpoints, [`${HOSTS[0]}:7946`], 'the managers');
    t.is(statSync(alice).mode & 0o777, 0o600, 'the context, holding a key, is the owner’s alone');
    const status = await remote(alice, 'status', '--json');
    t.is(status.code, 0, status.stderr);
    const local = await meshJson<StatusResponse>(manager, 'status');
    t.is((JSON.parse(status.stdout) as StatusResponse).clusterId, local.clusterId);
    const stack = cluster.file(
      'remote.yml',
      'services:\n  sleeper:\n    command: ["sleep", "1000"]\n    x-mesh: { runtime: process }\n',
    );
    const deployed = await remote(alice, 'deploy', '-c', stack, 'remote');
    t.is(deployed.code, 0, deployed.stderr);
    t.regex((await meshOn(manager, 'ls')).stdout, /remote\.sleeper/);
    t.regex(
      readFileSync(`${manager.dataDir}.log`, 'utf8'),
      /"operator":"alice".*"route":"POST \/v1\/stacks".*"msg":"operator request"/,
    );
  },
);

test.serial('the dashboard runs from elsewhere through the context, live', async (t) => {
  const { child, link } = await startDashboard({
    context: alice,
    dataDir: join(cluster.root, 'no-agent-here'),
  });
  t.teardown(() => child.kill('SIGTERM'));
  const login = await fetch(link, { redirect: 'manual' });
  t.is(login.status, 303);
  const cookie = String(login.headers.get('set-cookie')).split(';')[0] as string;
  const origin = new URL(link).origin;
  const status = (await (
    await fetch(`${origin}/api/status`, { headers: { cookie } })
  ).json()) as StatusResponse;
  t.is(status.clusterId, (await meshJson<StatusResponse>(manager, 'status')).clusterId);
  // The stream's first word is where the cluster stands, asked of the manager over mTLS.
  const stream = await fetch(`${origin}/api/stream`, { headers: { cookie } });
  const reader = stream.body?.getReader();
  const first = new TextDecoder().decode((await reader?.read())?.value);
  t.regex(first, /^event: change\ndata: \{"index":\d+,"events":\d+,"members":\d+\}/);
  await reader?.cancel();
});

test.serial('a client without a certificate is refused, saying what it needs', async (t) => {
  const context = JSON.parse(readFileSync(alice, 'utf8')) as OperatorContext;
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        host: HOSTS[0],
        port: 7946,
        path: '/control/v1/status',
        ca: context.ca,
        checkServerIdentity: () => undefined,
        agent: false,
      },
      (res) => {
        text(res).then((body) => resolve({ status: res.statusCode ?? 0, body }), reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
  t.is(answer.status, 401);
  t.regex(answer.body, /a client certificate is required: an operator's/);
});

test.serial("a node's certificate does not operate the cluster", async (t) => {
  const pki = join(manager.dataDir, 'pki');
  const node = contextWith(
    'node',
    readFileSync(join(pki, 'node.crt'), 'utf8'),
    readFileSync(join(pki, 'node.key'), 'utf8'),
  );
  const refused = await remote(node, 'status');
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^mesh: a node certificate does not operate the cluster/);
  t.true(
    logged(manager, 'operator request refused').some((e) =>
      /a node certificate/.test(String(e.reason)),
    ),
    'the refusal is logged with its reason',
  );
});

test.serial('a revoked operator is refused at once; an expired one too', async (t) => {
  const revoked = await meshOn(manager, 'operator', 'revoke', 'alice');
  t.is(revoked.code, 0, revoked.stderr);
  const refused = await remote(alice, 'status');
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^mesh: operator alice was revoked at /);

  const bob = join(cluster.root, 'bob.json');
  t.is((await meshOn(manager, 'operator', 'add', 'bob', '--expires', '2s', '-o', bob)).code, 0);
  t.is((await remote(bob, 'status')).code, 0, 'valid for two seconds');
  const expired = await eventually(
    async () => {
      const answer = await remote(bob, 'status');
      return answer.code !== 0 && answer;
    },
    { what: "bob's certificate refused once expired", timeoutMs: 15_000, intervalMs: 250 },
  );
  t.regex(
    expired.stderr,
    /certificate not accepted: CERT_HAS_EXPIRED|the certificate of operator bob expired/,
  );
  const rows = await meshJson<OperatorRow[]>(manager, 'operator', 'ls');
  t.deepEqual(
    rows.map((r) => `${r.name} ${r.state}`),
    ['alice revoked', 'bob expired'],
  );
});

test.serial('a context that is not one is named, before anything is sent', async (t) => {
  const broken = cluster.file('broken.json', JSON.stringify({ cluster: 'c1' }));
  const refused = await remote(broken, 'status');
  t.is(refused.code, 2);
  t.regex(refused.stderr, /is not a mesh context \(no operator, endpoints, ca, cert, key\)/);
  writeFileSync(broken, 'not json');
  t.is((await remote(broken, 'status')).code, 2);
});

test.serial(
  'uninstall never acts through a context: it stops a process of this machine',
  async (t) => {
    const refused = await remote(alice, 'uninstall');
    t.is(refused.code, 2);
    t.regex(refused.stderr, /uninstall acts on the node of this machine/);
    t.is((await meshJson<StatusResponse>(manager, 'status')).members.alive, 2, 'nothing stopped');
  },
);
