import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { get } from 'node:http';
import { promisify } from 'node:util';
import test from 'ava';
import type { StatusResponse, TaskRow } from '../../../agent/control/api.js';
import { filesRoot } from '../../../agent/secrets/files.js';
import { removeLabelled } from '../../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../../helpers/docker.js';
import { filesHolding } from '../../helpers/files-holding.js';
import {
  type AgentProcess,
  LocalCluster,
  meshJson,
  meshOn,
  nodeIdOf,
} from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';

const run = promisify(execFile);

// Loopback block 127.0.36.0/24. Node 1 is the only voter (it holds the keys); the stack runs on
// node 2, a worker, which gets each value from node 1 over the cluster's mTLS.
const HOSTS = ['127.0.36.1', '127.0.36.2'];
const HTTP_PORT = 18_036;
const FIRST = 'first-Secret-Value-3e1f9a';
const SECOND = 'second-Secret-Value-7b2c44';
const cluster = await LocalCluster.create('secrets');
let agents: AgentProcess[] = [];
let clusterId = '';

/**
 * db serves a page whose path is its password (read from /run/secrets/db_password); client
 * reads the same secret and asks for that page, printing the answer's status line.
 */
const STACK = `
services:
  db:
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "mkdir -p /tmp/www && echo welcome > /tmp/www/$(cat /run/secrets/db_password) && exec httpd -f -p 8080 -h /tmp/www"]
    expose: ["8080"]
    stop_grace_period: 1s
    secrets: [db_password]
    deploy:
      placement: { constraints: [node.role == worker] }
  client:
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "while true; do printf \\"GET /$(cat /run/secrets/password) HTTP/1.0\\\\r\\\\n\\\\r\\\\n\\" | nc db 8080 | head -1; sleep 1; done"]
    stop_grace_period: 1s
    secrets:
      - source: db_password
        target: password
        mode: 0400
    configs:
      - source: greeting
        target: /etc/greeting
    deploy:
      placement: { constraints: [node.role == worker] }
secrets:
  db_password:
    file: ./db_password.txt
configs:
  greeting:
    content: hello from a config
`;

/** GET of a path of db through node 1's ingress (fetch may not set a Host): the status. */
function statusOf(path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get(
      { host: HOSTS[0], port: HTTP_PORT, path, headers: { host: 'db.sec.mesh' }, agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', () => resolve(0));
  });
}

test.before(async () => {
  if ('skip' in engine) return;
  agents = await cluster.start(
    HOSTS,
    'sec',
    [],
    ['--dns-upstream', 'none', '--http-port', String(HTTP_PORT)],
  );
  clusterId = (await meshJson<StatusResponse>(agents[0] as AgentProcess, 'status')).clusterId;
});

test.after.always(async () => {
  await cluster.close();
  if (!('skip' in engine) && clusterId)
    await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
});

dockerTest(
  'a secret reaches only the tasks that use it, as a file; it is nowhere at rest; an update rolls its users',
  async (t, docker) => {
    const [voter, worker] = agents as [AgentProcess, AgentProcess];
    cluster.file('db_password.txt', FIRST);
    const file = cluster.file('sec.yml', STACK);
    await eventually(
      async () => (await meshOn(voter, 'deploy', '-c', file, 'sec', '--timeout', '60s')).code === 0,
      {
        what: 'the stack deployed once both nodes are recorded',
        timeoutMs: 90_000,
        intervalMs: 500,
      },
    );
    t.is(
      await eventually(() => statusOf(`/${FIRST}`).then((s) => s === 200 && s), {
        what: 'db serving its password page',
        timeoutMs: 20_000,
        intervalMs: 200,
      }),
      200,
    );
    await eventually(
      async () => /HTTP\/1\.[01] 200 OK/.test((await meshOn(voter, 'logs', 'client')).stdout),
      { what: 'the client connecting with the password', timeoutMs: 20_000, intervalMs: 500 },
    );

    // Nowhere at rest: no node's data dir (log, snapshots), no container's inspect output (its
    // environment included), and not on the voter, which runs no task of the stack.
    for (const agent of agents)
      t.deepEqual(await filesHolding(agent.dataDir, FIRST), [], agent.dataDir);
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`mesh.cluster=${clusterId}`] },
    });
    for (const c of containers) {
      const inspected = JSON.stringify(await docker.getContainer(c.Id).inspect());
      t.false(inspected.includes(FIRST), `docker inspect of ${c.Names[0]}`);
    }
    t.deepEqual(await filesHolding(filesRoot(await nodeIdOf(voter)), FIRST), []);
    const workerFiles = await filesHolding(filesRoot(await nodeIdOf(worker)), FIRST);
    t.is(workerFiles.length, 2, 'one file per task that uses it, on its node');
    const mounts = await readFile('/proc/self/mounts', 'utf8');
    t.true(
      mounts.includes(` ${filesRoot(await nodeIdOf(worker))} tmpfs `),
      'the files are on a tmpfs',
    );
    const [client] = await docker.listContainers({
      filters: { label: [`mesh.cluster=${clusterId}`, 'mesh.service=client'] },
    });
    const exec = async (cmd: string[]) => {
      const { stdout } = await run('docker', ['exec', client?.Id ?? '', ...cmd]);
      return stdout;
    };
    t.is(await exec(['cat', '/etc/greeting']), 'hello from a config');
    t.regex(await exec(['stat', '-c', '%a', '/run/secrets/password']), /^400/);

    const shown = await meshOn(voter, 'secret', 'inspect', 'sec_db_password');
    t.regex(shown.stdout, /version 1: 25 B/);
    t.regex(shown.stdout, /used by: sec\.db \(version 1\), sec\.client \(version 1\)/);
    t.false(shown.stdout.includes(FIRST), 'inspect never shows the value');
    const refused = await meshOn(voter, 'secret', 'rm', 'sec_db_password');
    t.is(refused.code, 1);
    t.regex(refused.stderr, /secret sec_db_password is in use by sec\.db, sec\.client/);

    // An update: a new version, and both services roll to it.
    const next = cluster.file('db_password.next', SECOND);
    const updated = await meshOn(voter, 'secret', 'update', 'sec_db_password', next);
    t.regex(updated.stdout, /version 2; rolling sec\.db, sec\.client to it/);
    await eventually(async () => (await statusOf(`/${SECOND}`)) === 200, {
      what: 'db serving the new password',
      timeoutMs: 60_000,
      intervalMs: 300,
    });
    await eventually(
      async () => {
        const tasks = await meshJson<TaskRow[]>(voter, 'ps', 'sec');
        return tasks.every((task) => task.serviceVersion === 2 && task.state === 'running');
      },
      { what: 'both services at version 2', timeoutMs: 60_000, intervalMs: 300 },
    );
    // The rollout starts the new replica first: the old one, with the old password, serves until
    // the new one is ready, then leaves the routes. Once the rollout is done it opens nothing.
    await eventually(async () => (await statusOf(`/${FIRST}`)) === 404, {
      what: 'the old password no longer opening it',
      timeoutMs: 10_000,
      intervalMs: 200,
    });
    for (const agent of agents) t.deepEqual(await filesHolding(agent.dataDir, SECOND), []);
    const same = await meshOn(voter, 'secret', 'update', 'sec_db_password', next);
    t.regex(same.stdout, /unchanged \(version 2 holds that value already\)/);
    const fromWorker = await meshOn(worker, 'secret', 'create', 'other', next);
    t.is(fromWorker.code, 1);
    t.regex(fromWorker.stderr, /is a worker: desired state changes on a manager/);
  },
);
