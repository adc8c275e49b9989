/**
 * The voting app's shape, with a real Redis and a real PostgreSQL (images built from this
 * machine's Debian packages by test/images/build-debian-apps.sh, EXPOSE as upstream sets it),
 * deployed from a stack file written the way the public one is: vote (HTTP, published, two
 * replicas) pushes to redis; worker (two replicas, on both networks) moves each vote from redis
 * to db; result (HTTP, published) reads db. redis and db declare no port; frontend and backend
 * share only the worker. Three agents on a real engine, loopback block 127.0.65.0/24; the same
 * images under plain `docker run` are the control.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import type { StatusResponse, TaskRow } from '../../agent/control/api.js';
import { buildImage, containerOf, removeLabelled, sh } from '../helpers/containers.js';
import { dockerTest, engine } from '../helpers/docker.js';
import {
  type AgentProcess,
  checkUnreachable,
  deployStack,
  LocalCluster,
  meshJson,
  nodesRecorded,
  testRanges,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

const run = promisify(execFile);
const HOSTS = ['127.0.65.1', '127.0.65.2', '127.0.65.3'];
const RANGES = testRanges(HOSTS[0] as string);
const VOTE_PORT = 18_065;
const RESULT_PORT = 18_066;
const APP_IMAGE = 'mesh-test/voting-app:latest';
const REDIS_IMAGE = 'mesh-test/redis:latest';
const DB_IMAGE = 'mesh-test/postgres:latest';
/** The control's own bridge, outside every test's bridge range. */
const CONTROL_NETWORK = 'mesh-test-voting-control';
const CONTROL_SUBNET = '10.239.65.0/24';

const VOTE = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
redis-cli -h redis RPUSH votes "$QUERY_STRING" >/dev/null && echo OK
`;
const RESULT = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
psql -h db -U postgres -qAtc 'SELECT choice FROM votes' 2>&1
`;
// As the real worker does, the table is made on each connection (a db back without its volume
// has none), and a vote that cannot be stored goes back to redis.
const WORKER = `#!/bin/sh
while true; do
  vote=$(redis-cli -h redis LPOP votes)
  if [ -z "$vote" ]; then sleep 0.2; continue; fi
  psql -h db -U postgres -qAtc "CREATE TABLE IF NOT EXISTS votes (choice text); INSERT INTO votes VALUES ('$vote')" ||
    { redis-cli -h redis LPUSH votes "$vote"; sleep 0.5; }
done
`;
const install = (path: string, text: string) =>
  `RUN echo ${Buffer.from(text).toString('base64')} | base64 -d > ${path} && chmod 755 ${path}`;

const APP = `
services:
  vote:
    image: ${APP_IMAGE}
    command: httpd -f -p 80 -h /www
    ports: ["${VOTE_PORT}:80"]
    networks: [frontend]
    stop_grace_period: 1s
    deploy: { replicas: 2 }
  redis:
    image: ${REDIS_IMAGE}
    networks: [frontend]
    stop_grace_period: 1s
  worker:
    image: ${APP_IMAGE}
    command: /bin/worker
    networks: [frontend, backend]
    stop_grace_period: 1s
    deploy: { replicas: 2 }
  db:
    image: ${DB_IMAGE}
    networks: [backend]
    stop_grace_period: 1s
  result:
    image: ${APP_IMAGE}
    command: httpd -f -p 80 -h /www
    ports: ["${RESULT_PORT}:80"]
    networks: [backend]
    stop_grace_period: 1s
networks:
  frontend:
  backend:
`;

const cluster = await LocalCluster.create('voting');
let agents: AgentProcess[] = [];
let clusterId = '';
/** From the deploy to every task running and ready, in ms. */
let deployedInMs = 0;

test.before(async () => {
  if ('skip' in engine) return;
  await run('bash', ['test/images/build-debian-apps.sh', 'redis', 'postgres', 'clients']);
  await buildImage(
    APP_IMAGE,
    [
      install('/bin/worker', WORKER),
      install('/www/cgi-bin/vote', VOTE),
      install('/www/cgi-bin/result', RESULT),
    ],
    'mesh-test/pg-redis-clients:latest',
  );
  agents = await cluster.start(HOSTS, 'voting');
  const seed = agents[0] as AgentProcess;
  clusterId = (await meshJson<StatusResponse>(seed, 'status')).clusterId;
  await nodesRecorded(seed, 3);
  // Nothing may send to the service range before it is routed unreachable here.
  await checkUnreachable(RANGES.serviceRange);
  const startedAt = Date.now();
  await deployStack(cluster, seed, 'voting', APP);
  await eventually(
    async () => {
      const tasks = await meshJson<TaskRow[]>(seed, 'ps', 'voting');
      return tasks.length === 7 && tasks.every((task) => task.state === 'running' && task.ready);
    },
    { what: 'seven tasks running and ready', timeoutMs: 90_000, intervalMs: 250 },
  );
  deployedInMs = Date.now() - startedAt;
});

test.after.always(async () => {
  await cluster.close();
  if ('skip' in engine) return;
  if (clusterId) await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
  await removeLabelled(engine.docker, 'mesh-test=voting-control');
  await run('docker', ['rmi', '-f', APP_IMAGE]).catch(() => undefined);
});

/** A GET to a published port on a node's address; the body, or the error in words. */
async function get(host: string, port: number, path: string): Promise<string> {
  try {
    const answer = await fetch(`http://${host}:${port}${path}`, {
      signal: AbortSignal.timeout(5000),
    });
    return await answer.text();
  } catch (error) {
    return `failed: ${(error as Error).message}`;
  }
}

/**
 * Votes through one node's ingress until one is taken, then reads it back through another's;
 * the milliseconds from the vote taken to the result page showing it.
 */
async function voteAndReadBack(choice: string): Promise<number> {
  await eventually(
    async () =>
      (await get(HOSTS[0] as string, VOTE_PORT, `/cgi-bin/vote?${choice}`)).includes('OK'),
    { what: `the vote ${choice} taken through node 1`, timeoutMs: 30_000, intervalMs: 500 },
  );
  const votedAt = Date.now();
  await eventually(
    async () =>
      (await get(HOSTS[2] as string, RESULT_PORT, '/cgi-bin/result')).split('\n').includes(choice),
    { what: `the vote ${choice} read back through node 3`, timeoutMs: 10_000, intervalMs: 100 },
  );
  return Date.now() - votedAt;
}

dockerTest(
  'a vote posted through one node is read back through another, also after db is killed',
  async (t, docker) => {
    t.log(`deploy to seven tasks ready: ${deployedInMs} ms`);
    const seed = agents[0] as AgentProcess;
    const db = (await meshJson<TaskRow[]>(seed, 'ps', 'voting.db'))[0];
    t.like(db, { ready: true, probe: 'port 5432 accepts connections' });
    t.log(`vote to result: ${await voteAndReadBack('cats')} ms`);
    const container = await containerOf(docker, clusterId, 'db');
    await run('docker', ['kill', container.id]);
    // Its votes went with it (no volume): a new one must get through once it is back.
    await eventually(
      async () => {
        const tasks = await meshJson<TaskRow[]>(seed, 'ps', 'voting.db');
        return tasks.some((task) => task.state === 'running' && task.ready && task.restarts > 0);
      },
      { what: 'db restarted and ready', timeoutMs: 30_000, intervalMs: 250 },
    );
    t.log(`vote to result after db came back: ${await voteAndReadBack('dogs')} ms`);
  },
);

dockerTest(
  'the same images under plain docker run pass a vote along (the control)',
  async (t, docker) => {
    await run('docker', [
      'network',
      'create',
      '--subnet',
      CONTROL_SUBNET,
      '--label',
      'mesh-test=voting-control',
      CONTROL_NETWORK,
    ]);
    const start = async (alias: string, image: string, ...command: string[]) => {
      const { stdout } = await run('docker', [
        'run',
        '-d',
        '--label',
        'mesh-test=voting-control',
        '--network',
        CONTROL_NETWORK,
        '--network-alias',
        alias,
        image,
        ...command,
      ]);
      return docker.getContainer(stdout.trim());
    };
    await start('redis', REDIS_IMAGE);
    await start('db', DB_IMAGE);
    await start('worker', APP_IMAGE, '/bin/worker');
    const web = await start('web', APP_IMAGE, 'httpd', '-f', '-p', '80', '-h', '/www');
    await eventually(
      async () =>
        (await sh(web, 'wget -qO- http://127.0.0.1/cgi-bin/vote?birds')).out.includes('OK'),
      { what: 'the control taking a vote', timeoutMs: 30_000, intervalMs: 250 },
    );
    const votedAt = Date.now();
    await eventually(
      async () =>
        (await sh(web, 'wget -qO- http://127.0.0.1/cgi-bin/result')).out
          .split('\n')
          .includes('birds'),
      { what: 'the control reading the vote back', timeoutMs: 10_000, intervalMs: 100 },
    );
    t.log(`control, vote to result: ${Date.now() - votedAt} ms`);
    t.pass();
  },
);
