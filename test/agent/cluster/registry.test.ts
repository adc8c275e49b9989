/**
 * A private image, as a team hosts one: a real registry with a login (127.0.74.9), a voter
 * (127.0.74.1) that holds the keys, and a worker (127.0.74.2) that runs the task and pulls.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { RegistryRow, StatusResponse, TaskRow } from '../../../agent/control/api.js';
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
import { startRegistry, type TestRegistry } from '../../helpers/registry.js';

const run = promisify(execFile);
const HOSTS = ['127.0.74.1', '127.0.74.2'];
const LOGIN = { username: 'team', password: 'registry-Token-5d1c0e' };
const cluster = await LocalCluster.create('registry');
let agents: AgentProcess[] = [];
let clusterId = '';
let registry: TestRegistry | undefined;

test.before(async () => {
  if ('skip' in engine) return;
  registry = await startRegistry(join(cluster.root, 'registry'), '127.0.74.9', 5000, LOGIN);
  agents = await cluster.start(HOSTS, 'reg');
  clusterId = (await meshJson<StatusResponse>(agents[0] as AgentProcess, 'status')).clusterId;
});

test.after.always(async () => {
  await cluster.close();
  await registry?.close();
  if (!('skip' in engine) && clusterId)
    await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
});

/** `mesh registry login` with the password on standard input, as a script gives it. */
function login(agent: AgentProcess, host: string, password: string) {
  return run(
    'sh',
    [
      '-c',
      'printf %s "$P" | exec "$NODE" "$MAIN" registry login "$H" -u team --password-stdin --data-dir "$D"',
    ],
    {
      env: {
        ...process.env,
        P: password,
        NODE: process.execPath,
        MAIN: join(import.meta.dirname, '../../../cli/main.js'),
        H: host,
        D: agent.dataDir,
      },
    },
  ).then(
    ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

dockerTest(
  "a private image runs once the registry's login is stored; only the node pulling gets it",
  async (t, docker) => {
    const [voter, worker] = agents as [AgentProcess, AgentProcess];
    const reg = registry as TestRegistry;
    const image = await reg.push(TEST_IMAGE, `team/app:${Date.now()}`);
    const file = cluster.file(
      'private.yml',
      `services:
  app:
    image: ${image}
    command: ["sleep", "600"]
    stop_grace_period: 1s
    deploy:
      restart_policy: { delay: 1s }
      placement: { constraints: [node.role == worker] }
`,
    );
    await eventually(
      async () => (await meshOn(voter, 'deploy', '-c', file, 'reg', '--detach')).code === 0,
      { what: 'the stack accepted once both nodes are recorded', timeoutMs: 60_000 },
    );
    // Without a login the pull is refused, and the task says what to do.
    const refused = await eventually(
      async () => {
        const tasks = await meshJson<TaskRow[]>(voter, 'ps', 'reg', '-a');
        return tasks.find((task) => /mesh registry login/.test(task.reason ?? ''))?.reason;
      },
      { what: 'the pull refused without a login', timeoutMs: 60_000, intervalMs: 500 },
    );
    t.regex(refused as string, new RegExp(`log in with: mesh registry login ${reg.host}`));

    // A wrong password is refused by the registry itself, and nothing is stored.
    const wrong = await login(voter, reg.host, 'not-the-password');
    t.is(wrong.code, 1);
    t.regex(wrong.stderr, new RegExp(`${reg.host} did not take the login of team, nothing stored`));
    t.deepEqual(await meshJson<RegistryRow[]>(voter, 'registry', 'ls'), []);
    // Only a manager stores a login.
    const fromWorker = await login(worker, reg.host, LOGIN.password);
    t.is(fromWorker.code, 1);
    t.regex(fromWorker.stderr, /is a worker/);

    const stored = await login(voter, `http://${reg.host}/`, LOGIN.password);
    t.is(stored.code, 0, stored.stderr);
    t.regex(stored.stdout, new RegExp(`login for ${reg.host} stored sealed, as team`));
    // The task's next try pulls with it, on the worker.
    await eventually(
      async () => {
        const tasks = await meshJson<TaskRow[]>(voter, 'ps', 'reg');
        return tasks.some((task) => task.state === 'running');
      },
      { what: 'the task running from the private image', timeoutMs: 60_000, intervalMs: 500 },
    );
    const rows = await meshJson<RegistryRow[]>(voter, 'registry', 'ls');
    t.like(rows, [{ host: reg.host, username: 'team', services: ['reg.app'] }]);
    t.false(JSON.stringify(rows).includes(LOGIN.password), 'a listing never shows the password');
    const listed = await meshOn(voter, 'registry', 'ls');
    t.regex(
      listed.stdout,
      new RegExp(`^${reg.host.replace(/\./g, '\\.')}\\s+team\\s+.*reg\\.app$`, 'm'),
    );

    // The voter opened it for the worker, for that task; it is at rest nowhere.
    const workerId = await nodeIdOf(worker);
    t.regex(
      await readFile(`${voter.dataDir}.log`, 'utf8'),
      new RegExp(`"asker":"${workerId}".*"host":"${reg.host}".*opened a registry login for a task`),
    );
    for (const agent of agents)
      t.deepEqual(await filesHolding(agent.dataDir, LOGIN.password), [], agent.dataDir);
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`mesh.cluster=${clusterId}`] },
    });
    for (const c of containers)
      t.false(
        JSON.stringify(await docker.getContainer(c.Id).inspect()).includes(LOGIN.password),
        `docker inspect of ${c.Names[0]}`,
      );

    const out = await meshOn(voter, 'registry', 'logout', reg.host);
    t.regex(out.stdout, new RegExp(`login for ${reg.host} removed`));
    t.deepEqual(await meshJson<RegistryRow[]>(voter, 'registry', 'ls'), []);
  },
);
