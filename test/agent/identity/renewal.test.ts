import { readFile } from 'node:fs/promises';
import test from 'ava';
import type { NodeRow } from '../../../agent/control/api.js';
import {
  type AgentProcess,
  LocalCluster,
  meshJson,
  meshOn,
  nodesSeenBy,
} from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';

// Loopback block 127.0.46.0/24: certificates of a minute, renewed at 40 s.
const HOSTS = ['127.0.46.1', '127.0.46.2'];
const cluster = await LocalCluster.create('renewal');
test.after.always(() => cluster.close());

const stack = (name: string) =>
  `name: ${name}\nservices:\n  worker:\n    command: ["sleep", "100000"]\n    x-mesh: { runtime: process }\n    deploy: { replicas: 2 }\n`;

test('with one-minute certificates every node renews its own, and the cluster runs on past the first expiry', async (t) => {
  const startedAt = Date.now();
  const agents = await cluster.start(HOSTS, 'renew', ['--cert-validity', '1m']);
  const [first, second] = agents as [AgentProcess, AgentProcess];
  const expiries = async () => (await nodesSeenBy(first.dataDir)).map((n) => n.certExpires ?? '');
  await eventually(async () => (await expiries()).filter(Boolean).length === 2, {
    what: 'both nodes gossiping their certificate',
    timeoutMs: 30_000,
    intervalMs: 300,
  });
  const before = await expiries();
  const deployed = await eventually(
    async () =>
      (await meshOn(first, 'deploy', '-c', cluster.file('a.yml', stack('before')))).code === 0,
    { what: 'a stack deployed', timeoutMs: 30_000, intervalMs: 500 },
  );
  t.true(deployed);

  // Both renew at two thirds of the minute; past the first expiry, all still works.
  await eventually(
    async () => {
      const now = await expiries();
      return now.every((expiry, i) => Date.parse(expiry) > Date.parse(before[i] ?? '') + 20_000);
    },
    { what: 'both certificates renewed', timeoutMs: 70_000, intervalMs: 1000 },
  );
  const firstExpiry = Math.max(...before.map((b) => Date.parse(b)));
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstExpiry + 2000 - Date.now())));
  const nodes = await meshJson<NodeRow[]>(second, 'node', 'ls');
  t.deepEqual(
    nodes.map((n) => n.status),
    ['alive', 'alive'],
  );
  const after = await meshOn(first, 'deploy', '-c', cluster.file('b.yml', stack('after')));
  t.is(after.code, 0, after.stderr);
  const running = await meshJson<Array<{ state: string }>>(second, 'ps', 'before');
  t.deepEqual(
    running.map((r) => r.state),
    ['running', 'running'],
  );
  // No connection refused from the first renewal on (a joiner's bare handshake that pins the CA
  // is logged as refused before, at join).
  for (const agent of agents) {
    const lines = (await readFile(`${agent.dataDir}.log`, 'utf8'))
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { time: number; msg: string; reason?: string });
    const renewed = lines.find((l) => l.msg === 'this node’s certificate renewed');
    t.truthy(renewed, `${agent.dataDir} renewed its certificate`);
    const refused = lines.filter(
      (l) =>
        l.time >= (renewed?.time ?? 0) &&
        (/handshake refused/.test(l.msg) || /expired/.test(l.reason ?? '')),
    );
    t.deepEqual(refused, [], agent.dataDir);
  }
  t.log(
    `renewed and ran past the first expiry in ${Math.round((Date.now() - startedAt) / 1000)} s`,
  );
});
