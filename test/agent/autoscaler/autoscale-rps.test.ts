/**
 * Autoscaling on request rate, end to end with process tasks: the load goes through the ingress
 * of a node that runs none of the replicas; the service grows to its max under it and shrinks
 * back to its min after the stabilization window, with no request failing either way.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import type { ClusterEvent } from '../../../agent/control/api.js';
import { startLoad } from '../../helpers/load.js';
import {
  type AgentProcess,
  deployStack,
  firstServiceRow,
  LocalCluster,
  meshOn,
  nodeIdOf,
  nodesRecorded,
  serviceDetail,
} from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';

const run = promisify(execFile);

// Loopback block 127.0.86.0/24: three nodes, 127.0.86.77 the test's client. No engine needed.
process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
const HOSTS = ['127.0.86.1', '127.0.86.2', '127.0.86.3'];
const CLIENT = '127.0.86.77';
const HTTP_PORT = 18_086;
const cluster = await LocalCluster.create('autoscale-rps');

test.before(async () => {
  await run('ip', ['addr', 'add', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
});

test.after.always(async () => {
  await cluster.close();
  await run('ip', ['addr', 'del', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
});

/** api: a Node server as a process task, autoscaled on 20 requests a second per replica. */
const stack = (avoid: string) => `
services:
  api:
    command: ["node", "-e", "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT, process.env.MESH_HOST)"]
    ports: ["8080"]
    stop_grace_period: 2s
    deploy:
      placement: { constraints: ["node.id != ${avoid}"] }
    x-mesh:
      runtime: process
      routes: [api.auto.test]
      readiness: { http: /, interval: 200ms }
      autoscale:
        min: 1
        max: 4
        rps: 20
        scale_up: { period: 2s }
        scale_down: { stabilization: 8s, period: 2s }
`;

test('a service scaled on rps follows load sent through the ingress of a node that runs none of it', async (t) => {
  const agents = await cluster.start(
    HOSTS,
    'as',
    [],
    ['--dns-upstream', 'none', '--http-port', String(HTTP_PORT)],
  );
  const [first, , third] = agents as [AgentProcess, AgentProcess, AgentProcess];
  await nodesRecorded(first, 3);
  await deployStack(cluster, first, 'auto', stack(await nodeIdOf(third)));
  const started = await firstServiceRow(first);
  t.like(started, { desired: 1, autoscale: { min: 1, max: 4, targets: { rps: 20 } } });

  // mesh scale would fight the autoscaler: it is refused, and says how to change the bounds.
  const scaled = await meshOn(first, 'scale', 'auto.api=3');
  t.is(scaled.code, 1);
  t.regex(
    scaled.stderr,
    /service auto\.api is autoscaled between 1 and 4 replicas: change min and max under x-mesh\.autoscale in its stack file and deploy it/,
  );

  const target = {
    host: HOSTS[2] as string,
    port: HTTP_PORT,
    hostHeader: 'api.auto.test',
    localAddress: CLIENT,
  };
  const load = startLoad(target, { clients: 2, maxRequests: 1_000_000, maxMs: 90_000 });
  const grown = await eventually(
    async () => {
      const row = await firstServiceRow(first);
      return row.desired === 4 && row.ready === 4 && row;
    },
    { what: 'auto.api grown to 4 ready replicas', timeoutMs: 80_000, intervalMs: 500 },
  );
  const up = await load.stop();
  t.deepEqual(up.failures, [], `${up.failed} of ${up.requests} requests failed while growing`);
  t.true((grown.autoscale?.observed?.rps ?? 0) > 0, JSON.stringify(grown.autoscale));
  const listed = await meshOn(first, 'ls');
  t.regex(listed.stdout, /4\/4 \(auto 1–4, rps [\d.]+\/20\)/);

  // Quiet now, but for a trickle that must keep being answered while replicas go.
  const trickle = startLoad(target, {
    clients: 1,
    maxRequests: 10_000,
    maxMs: 90_000,
    pauseMs: 200,
  });
  await eventually(async () => (await firstServiceRow(first)).desired === 1, {
    what: 'auto.api shrunk to 1 replica',
    timeoutMs: 80_000,
    intervalMs: 500,
  });
  const down = await trickle.stop();
  t.deepEqual(
    down.failures,
    [],
    `${down.failed} of ${down.requests} requests failed while shrinking`,
  );

  const decisions = (await serviceDetail(first, 'auto.api')).autoscaling?.decisions ?? [];
  t.true(decisions.length >= 2, JSON.stringify(decisions));
  t.regex(decisions[0]?.reason ?? '', /^scaled 1→\d: rps [\d.]+\/replica > target 20/);
  const last = decisions.at(-1);
  t.is(last?.to, 1, JSON.stringify(decisions));
  // Down only once the window (8 s) since the last high recommendation passed.
  const lastUp = decisions.filter((d) => d.to > d.from).at(-1);
  t.true((last?.at ?? 0) - (lastUp?.at ?? 0) >= 8000, JSON.stringify(decisions));
  const inspected = await meshOn(first, 'inspect', 'auto.api');
  t.regex(
    inspected.stdout,
    /autoscale: 1–4 replicas on rps [\d.-]+\/20 \(per replica\); tolerance 10%/,
  );
  t.regex(inspected.stdout, /last decision \d+s ago: /);
  // Each change is an event on every node.
  const feed = await meshOn(third, 'events', '--type', 'service', '--json');
  const events = feed.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ClusterEvent);
  t.true(
    events.some(
      (e) =>
        e.action === 'autoscaled' && e.subject === 'auto.api' && /^scaled 1→/.test(e.reason ?? ''),
    ),
    JSON.stringify(events),
  );
  t.log(
    `grew to 4 under ${up.requests} requests (${up.failed} failed); shrank under ${down.requests} (${down.failed} failed)`,
  );
});
