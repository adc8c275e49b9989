import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import type { StatusResponse, TaskRow } from '../../../agent/control/api.js';
import { removeLabelled } from '../../helpers/containers.js';
import { dockerTest, engine } from '../../helpers/docker.js';
import { startLoad } from '../../helpers/load.js';
import { type AgentProcess, LocalCluster, meshJson, meshOn } from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';
import { versionedWebStack } from '../../helpers/versioned-web.js';

const run = promisify(execFile);

// Loopback block 127.0.35.0/24: two nodes, and 127.0.35.77 as the test's client. The load goes
// to node 1's ingress, which routes to replicas on both nodes.
const HOSTS = ['127.0.35.1', '127.0.35.2'];
const CLIENT = '127.0.35.77';
const HTTP_PORT = 18_035;
const cluster = await LocalCluster.create('rolling');
let agents: AgentProcess[] = [];
let clusterId = '';

const deploy = (version: string, readyPath?: string) =>
  meshOn(
    agents[0] as AgentProcess,
    'deploy',
    '-c',
    cluster.file(`roll-${version}.yml`, versionedWebStack(version, { readyPath })),
    'roll',
    '--timeout',
    '90s',
  );

/** Continuous load through node 1's ingress while `during` runs; bounded in count and time. */
async function underLoad<T>(during: () => Promise<T>) {
  const load = startLoad(
    {
      host: HOSTS[0] as string,
      port: HTTP_PORT,
      hostHeader: 'web.roll.test',
      localAddress: CLIENT,
    },
    { clients: 4, maxRequests: 200_000, maxMs: 120_000 },
  );
  const outcome = await during();
  return { outcome, load: await load.stop() };
}

/** Each running task of web, with its container's start time. */
async function containersByTask(): Promise<Record<string, string>> {
  if ('skip' in engine) return {};
  const listed = await engine.docker.listContainers({
    filters: { label: [`mesh.cluster=${clusterId}`, 'mesh.service=web'], status: ['running'] },
  });
  const started: Record<string, string> = {};
  for (const c of listed) {
    // One of a replaced version may be removed between the listing and this look: not running.
    const info = await engine.docker
      .getContainer(c.Id)
      .inspect()
      .catch((error: { statusCode?: number }) => {
        if (error.statusCode === 404) return undefined;
        throw error;
      });
    if (info?.State.Running) started[c.Labels['mesh.task'] as string] = info.State.StartedAt;
  }
  return started;
}

test.before(async () => {
  if ('skip' in engine) return;
  // Already there (a run killed before its cleanup) is fine: the address is this file's own.
  await run('ip', ['addr', 'add', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
  agents = await cluster.start(
    HOSTS,
    'roll',
    [],
    ['--dns-upstream', 'none', '--http-port', String(HTTP_PORT)],
  );
  clusterId = (await meshJson<StatusResponse>(agents[0] as AgentProcess, 'status')).clusterId;
  const first = await deploy('v1');
  if (first.code !== 0) throw new Error(first.stderr);
});

test.after.always(async () => {
  await cluster.close();
  await run('ip', ['addr', 'del', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
  if (!('skip' in engine) && clusterId)
    await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
});

dockerTest('tasks are ready once their probe passes, and mesh ps says so', async (t) => {
  const tasks = await meshJson<TaskRow[]>(agents[0] as AgentProcess, 'ps', 'roll');
  t.is(tasks.length, 3);
  for (const task of tasks) t.like(task, { state: 'running', ready: true, probe: 'GET /: 200' });
});

dockerTest('an update under continuous load: start-first, no request fails', async (t) => {
  const { outcome, load } = await underLoad(() => deploy('v2'));
  t.is(outcome.code, 0, outcome.stderr);
  t.regex(outcome.stderr, /roll\.web: 3\/3 ready, 3\/3 updated/);
  t.regex(outcome.stderr, /stack roll converged/);
  t.deepEqual(load.failures, [], `${load.failed} of ${load.requests} requests failed`);
  t.true(load.requests >= 100, `only ${load.requests} requests were sent`);
  t.true((load.bodies.v1 ?? 0) > 0 && (load.bodies.v2 ?? 0) > 0, JSON.stringify(load.bodies));
  const tasks = await meshJson<TaskRow[]>(agents[0] as AgentProcess, 'ps', 'roll');
  t.deepEqual(
    tasks.map((task) => [task.serviceVersion, task.ready]),
    [
      [2, true],
      [2, true],
      [2, true],
    ],
  );
  t.log(
    `update under load: ${load.requests} requests, ${load.failed} failed, p99 ${load.p99Ms} ms`,
  );
});

dockerTest(
  'a version that never becomes ready rolls back by itself; the old tasks serve throughout, untouched',
  async (t) => {
    // The last task of version 1 may still be stopping.
    const before = await eventually(
      async () => {
        const running = await containersByTask();
        return Object.keys(running).length === 3 && running;
      },
      { what: 'three containers of web running', timeoutMs: 15_000, intervalMs: 200 },
    );
    const { outcome, load } = await underLoad(() => deploy('v3', '/not-there'));
    t.is(outcome.code, 1, 'mesh deploy fails');
    t.regex(
      outcome.stderr,
      /rollout of roll failed: roll\.web version 3 rolled back: task roll\.web\.\S+ never became ready \(GET \/not-there: 404\)/,
    );
    t.deepEqual(load.failures, [], `${load.failed} of ${load.requests} requests failed`);
    t.deepEqual(Object.keys(load.bodies), ['v2'], 'only the old version ever answered');
    const [stack] = await meshJson<
      Array<{ services: Array<{ version: number; rollout: unknown }> }>
    >(agents[0] as AgentProcess, 'ls');
    t.like(stack?.services[0], { version: 4, rollout: { state: 'rolled-back' } });
    t.deepEqual(await containersByTask(), before, 'same tasks, same containers, never restarted');
  },
);
