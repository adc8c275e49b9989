/**
 * An application in the voting app's shape, deployed from a stack file written the way the
 * public one is (no expose:): vote (HTTP, published) pushes to redis, worker moves each vote from
 * redis to db, result (HTTP, published) reads db. busybox stand-ins that really pass the data
 * along; redis declares no port anywhere (seen listening), db's image EXPOSEs 5432 as
 * postgres' does. Three agents on a real engine, loopback block 127.0.65.0/24.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import type { StatusResponse, TaskRow } from '../../agent/control/api.js';
import { buildImage, containerOf, removeLabelled } from '../helpers/containers.js';
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
const DB_IMAGE = 'mesh-test/voting-db:latest';

/** A store of lines on one port, one command a connection: PUSH/ADD a line, POP the first, ALL. */
const STORE = `#!/bin/sh
read -r cmd arg
case "$cmd" in
  PUSH|ADD) echo "$arg" >> /tmp/lines; echo OK ;;
  POP) if [ -s /tmp/lines ]; then head -n 1 /tmp/lines; sed -i 1d /tmp/lines; fi ;;
  ALL) cat /tmp/lines 2>/dev/null ;;
esac
`;
const VOTE = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "PUSH $QUERY_STRING" | nc -w 2 redis 6379
`;
const RESULT = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo ALL | nc -w 2 db 5432
`;
const WORKER = `#!/bin/sh
while true; do
  vote=$(echo POP | nc -w 2 redis 6379)
  if [ -n "$vote" ]; then echo "ADD $vote" | nc -w 2 db 5432; else sleep 0.2; fi
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
    stop_grace_period: 1s
  redis:
    image: ${APP_IMAGE}
    command: nc -ll -p 6379 -e /bin/store
    stop_grace_period: 1s
  worker:
    image: ${APP_IMAGE}
    command: /bin/worker
    stop_grace_period: 1s
  db:
    image: ${DB_IMAGE}
    command: nc -ll -p 5432 -e /bin/store
    stop_grace_period: 1s
  result:
    image: ${APP_IMAGE}
    command: httpd -f -p 80 -h /www
    ports: ["${RESULT_PORT}:80"]
    stop_grace_period: 1s
`;

const cluster = await LocalCluster.create('voting');
let agents: AgentProcess[] = [];
let clusterId = '';

test.before(async () => {
  if ('skip' in engine) return;
  await buildImage(APP_IMAGE, [
    install('/bin/store', STORE),
    install('/bin/worker', WORKER),
    install('/www/cgi-bin/vote', VOTE),
    install('/www/cgi-bin/result', RESULT),
  ]);
  await buildImage(DB_IMAGE, ['EXPOSE 5432'], APP_IMAGE);
  agents = await cluster.start(HOSTS, 'voting');
  const seed = agents[0] as AgentProcess;
  clusterId = (await meshJson<StatusResponse>(seed, 'status')).clusterId;
  await nodesRecorded(seed, 3);
  // Nothing may send to the service range before it is routed unreachable here.
  await checkUnreachable(RANGES.serviceRange);
  await deployStack(cluster, seed, 'voting', APP);
});

test.after.always(async () => {
  await cluster.close();
  if ('skip' in engine) return;
  if (clusterId) await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
  await run('docker', ['rmi', '-f', DB_IMAGE, APP_IMAGE]).catch(() => undefined);
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
 * Votes through one node's ingress until one is taken, then reads it back through another's:
 * the result page then.
 */
async function voteAndReadBack(choice: string): Promise<string> {
  await eventually(
    async () =>
      (await get(HOSTS[0] as string, VOTE_PORT, `/cgi-bin/vote?${choice}`)).includes('OK'),
    {
      what: `the vote ${choice} taken through node 1`,
      timeoutMs: 30_000,
      intervalMs: 500,
    },
  );
  let page = '';
  await eventually(
    async () => {
      page = await get(HOSTS[2] as string, RESULT_PORT, '/cgi-bin/result');
      return page.includes(choice);
    },
    { what: `the vote ${choice} read back through node 3`, timeoutMs: 15_000, intervalMs: 250 },
  );
  return page;
}

dockerTest(
  'a vote posted through one node is read back through another, also after db is killed',
  async (t, docker) => {
    const seed = agents[0] as AgentProcess;
    await eventually(
      async () => {
        const tasks = await meshJson<TaskRow[]>(seed, 'ps', 'voting');
        return tasks.length === 5 && tasks.every((task) => task.state === 'running' && task.ready);
      },
      { what: 'five services running and ready', timeoutMs: 90_000, intervalMs: 500 },
    );
    t.regex(await voteAndReadBack('cats'), /^cats$/m);
    const db = await containerOf(docker, clusterId, 'db');
    await run('docker', ['kill', db.id]);
    // Its votes went with it (no volume): a new one must get through once it is back.
    await eventually(
      async () => {
        const tasks = await meshJson<TaskRow[]>(seed, 'ps', 'voting.db');
        return tasks.some((task) => task.state === 'running' && task.restarts > 0);
      },
      { what: 'db restarted', timeoutMs: 30_000, intervalMs: 250 },
    );
    await voteAndReadBack('dogs');
    t.pass();
  },
);
