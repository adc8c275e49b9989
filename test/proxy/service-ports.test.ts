/**
 * A service address answers on the ports its replicas really serve, with nothing declared: the
 * image's EXPOSE, and ports only seen listening. Two agents on a real engine, loopback block
 * 127.0.64.0/24: node 1 (zone b) runs the client, node 2 (zone a) db and cache, so each
 * connection crosses nodes through the agents' mTLS.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import type { RoutesResponse, StatusResponse, TaskRow } from '../../agent/control/api.js';
import { buildImage, containerOf, removeLabelled, sh } from '../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../helpers/docker.js';
import {
  type AgentProcess,
  checkUnreachable,
  deployStack,
  LocalCluster,
  meshJson,
  meshOn,
  nodesRecorded,
  testRanges,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

const run = promisify(execFile);
const HOSTS = ['127.0.64.1', '127.0.64.2'];
const RANGES = testRanges(HOSTS[0] as string);
/** postgres' shape: a server on 5432, declared by the image only. */
const DB_IMAGE = 'mesh-test/expose-5432:latest';
/** Published on loopback only ("127.0.0.1:PORT:8080"), as Compose binds it. */
const LOCAL_ONLY = 18_064;

// The file declares neither ports: nor expose: (as most public stack files do for db and cache).
const APP = `
services:
  db:
    image: ${DB_IMAGE}
    command: nc -ll -p 5432 -e cat
    stop_grace_period: 1s
    deploy:
      placement: { constraints: [node.labels.zone == a] }
  cache:
    image: ${TEST_IMAGE}
    command: nc -ll -p 6379 -e cat
    stop_grace_period: 1s
    deploy:
      placement: { constraints: [node.labels.zone == a] }
  admin:
    image: ${TEST_IMAGE}
    command: httpd -f -p 8080 -h /www
    ports: ["127.0.0.1:${LOCAL_ONLY}:8080"]
    stop_grace_period: 1s
  client:
    image: ${TEST_IMAGE}
    command: sleep 100000
    stop_grace_period: 1s
    deploy:
      placement: { constraints: [node.labels.zone == b] }
`;

const cluster = await LocalCluster.create('ports');
let agents: AgentProcess[] = [];
let clusterId = '';

test.before(async () => {
  if ('skip' in engine) return;
  await buildImage(DB_IMAGE, ['EXPOSE 5432']);
  agents = await cluster.start([HOSTS[0] as string], 'ports', ['--label', 'zone=b']);
  const seed = agents[0] as AgentProcess;
  const token = (await meshOn(seed, 'token')).stdout.trim();
  agents.push(
    cluster.spawn('ports2', [
      'join',
      token,
      '--advertise',
      HOSTS[1] as string,
      '--label',
      'zone=a',
      '--dns-upstream',
      'none',
    ]),
  );
  clusterId = (await meshJson<StatusResponse>(seed, 'status')).clusterId;
  await nodesRecorded(seed, 2);
  // Nothing may send to the service range before it is routed unreachable here.
  await checkUnreachable(RANGES.serviceRange);
  await deployStack(cluster, seed, 'app', APP);
});

test.after.always(async () => {
  await cluster.close();
  if ('skip' in engine) return;
  if (clusterId) await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
  await run('docker', ['rmi', '-f', DB_IMAGE]).catch(() => undefined);
});

/** A line sent to host:port from the client, and what came back (an echo, or nc's complaint). */
const roundTrip = (host: string, port: number) =>
  `echo across-nodes-${port} | nc -w 3 ${host} ${port}`;

dockerTest(
  'from another node: db by its image port, cache by the port it listens on, 9999 refused at once',
  async (t, docker) => {
    const seed = agents[0] as AgentProcess;
    for (const service of ['app.db', 'app.cache', 'app.admin', 'app.client'])
      await eventually(
        async () => {
          const tasks = await meshJson<TaskRow[]>(seed, 'ps', service);
          return tasks.length > 0 && tasks.every((task) => task.state === 'running');
        },
        { what: `${service} running`, timeoutMs: 60_000, intervalMs: 250 },
      );
    const client = await containerOf(docker, clusterId, 'client');
    for (const [host, port] of [
      ['db', 5432],
      ['cache', 6379],
    ] as const) {
      const echoed = await eventually(
        async () => (await sh(client, roundTrip(host, port))).out.includes(`across-nodes-${port}`),
        { what: `${host}:${port} echoing to the client`, timeoutMs: 20_000, intervalMs: 250 },
      );
      t.true(echoed);
    }
    // Nothing serves 9999: refused by the address itself, well before timeout's 1 s.
    const refused = await sh(client, 'timeout 1 nc db 9999 </dev/null; echo "exit=$?"');
    t.regex(refused.out, /refused/i, refused.out);
    t.regex(refused.out, /exit=1$/m, 'nc failed on its own, not killed by timeout');

    const portsOf = async (id: string) =>
      (await meshJson<RoutesResponse>(seed, 'inspect', id)).services[0]?.ports;
    t.deepEqual(await portsOf('app.db'), [{ port: 5432, source: 'image' }]);
    t.deepEqual(await portsOf('app.cache'), [{ port: 6379, source: 'listening' }]);
  },
);

dockerTest(
  'a port published on 127.0.0.1 answers on the loopback only, not on the node address',
  async (t) => {
    const page = await eventually(
      async () => {
        const answer = await fetch(`http://127.0.0.1:${LOCAL_ONLY}/`).catch(() => undefined);
        return answer?.ok && (await answer.text());
      },
      { what: `127.0.0.1:${LOCAL_ONLY} answering`, timeoutMs: 30_000, intervalMs: 250 },
    );
    t.regex(page as string, /mesh test page/);
    for (const host of HOSTS) {
      const refused = await fetch(`http://${host}:${LOCAL_ONLY}/`).then(
        () => 'answered',
        (error: Error) => String((error.cause as { code?: string } | undefined)?.code),
      );
      t.is(refused, 'ECONNREFUSED', `${host}:${LOCAL_ONLY}`);
    }
  },
);
