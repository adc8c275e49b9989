/**
 * `mesh events -f` on a worker, as an operator would watch it: a deploy's tasks come up, a
 * replica's container is killed with docker kill (it dies, and starts again, saying why), and a
 * node is killed (suspect, then down, and its task is placed elsewhere, saying why). A voter on
 * 127.0.77.1, two workers on .2 and .3; a real engine.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import type { ClusterEvent, StatusResponse, TaskRow } from '../../agent/control/api.js';
import { removeLabelled } from '../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../helpers/docker.js';
import {
  type AgentProcess,
  deployStack,
  LocalCluster,
  meshJson,
  meshOn,
  nodeIdOf,
  nodesSeenBy,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const [VOTER, WATCHER, DOOMED] = ['127.0.77.1', '127.0.77.2', '127.0.77.3'];
const cluster = await LocalCluster.create('events');
let agents: AgentProcess[] = [];
let clusterId = '';
let follower: ChildProcess | undefined;
const seen: ClusterEvent[] = [];

const STACK = `services:
  web:
    image: ${TEST_IMAGE}
    command: httpd -f -p 8080 -h /www
    stop_grace_period: 1s
    deploy:
      replicas: 2
      placement: { constraints: [node.role == worker] }
      restart_policy: { condition: any, delay: 1s }
`;

test.before(async () => {
  if ('skip' in engine) return;
  const [voter] = (await cluster.start([VOTER as string], 'ev', ['--reschedule-after', '2s'])) as [
    AgentProcess,
  ];
  clusterId = (await meshJson<StatusResponse>(voter, 'status')).clusterId;
  // Right after init, the token waits for the CA to be handed over to the replicated state.
  const token = await eventually(
    async () => (await meshOn(voter, 'token', '--worker')).stdout.trim(),
    { what: 'a worker token', timeoutMs: 20_000, intervalMs: 200 },
  );
  const workers = [WATCHER, DOOMED].map((host, i) =>
    cluster.spawn(`ev${i + 2}`, [
      'join',
      token,
      '--advertise',
      host as string,
      '--dns-upstream',
      'none',
    ]),
  );
  agents = [voter, ...workers];
  await eventually(
    async () =>
      (await nodesSeenBy(voter.dataDir)).filter((n) => n.status === 'alive' && n.recorded)
        .length === 3,
    { what: 'three nodes alive and recorded', timeoutMs: 60_000, intervalMs: 200 },
  );
  // The operator's window, opened before anything happens: every event from here on.
  follower = spawn(
    process.execPath,
    [MAIN, 'events', '-f', '--json', '--data-dir', (workers[0] as AgentProcess).dataDir],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let partial = '';
  follower.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + String(chunk)).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line) seen.push(JSON.parse(line) as ClusterEvent);
  });
});

test.after.always(async () => {
  follower?.kill();
  await cluster.close();
  if (!('skip' in engine) && clusterId)
    await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
});

/** Where in what the watcher saw the first event matching, once it came. */
function when(what: string, match: (e: ClusterEvent) => boolean, timeoutMs = 30_000) {
  return eventually(
    () => {
      const at = seen.findIndex(match);
      return at >= 0 ? { at, event: seen[at] as ClusterEvent } : undefined;
    },
    { what, timeoutMs, intervalMs: 100 },
  );
}

dockerTest('a deploy, a killed container and a killed node, in order', async (t) => {
  const [voter, watcher, doomed] = agents as [AgentProcess, AgentProcess, AgentProcess];
  await deployStack(cluster, voter, 'ev', STACK);
  const doomedId = await nodeIdOf(doomed);
  const watcherId = await nodeIdOf(watcher);
  const tasks = await meshJson<TaskRow[]>(voter, 'ps', 'ev');
  const here = tasks.find((task) => task.node === watcherId);
  const there = tasks.find((task) => task.node === doomedId);
  if (!here || !there)
    throw new Error(`a replica on each worker expected: ${JSON.stringify(tasks)}`);

  const isTask = (task: string, action: string) => (e: ClusterEvent) =>
    e.type === 'task' && e.subject === task && e.action === action;
  const assigned = await when('the task assigned', isTask(here.id, 'assigned'));
  const running = await when('the task running', isTask(here.id, 'running'));
  t.true(assigned.at < running.at, 'assigned, then running');
  t.is(running.event.service, 'ev.web');

  const [container] = (
    await run('docker', ['ps', '-q', '--filter', `label=mesh.task=${here.id}`])
  ).stdout.split('\n');
  await run('docker', ['kill', container as string]);
  const died = await when(
    'the killed container seen',
    (e) => e.type === 'task' && e.subject === here.id && /code 137/.test(e.reason ?? ''),
  );
  t.is(died.event.action, 'restarting');
  t.regex(died.event.reason ?? '', /restart 1/);
  const again = await when(
    'the task running again',
    (e) => isTask(here.id, 'running')(e) && seen.indexOf(e) > died.at,
  );
  t.true(running.at < died.at, 'running, then died');
  doomed.child.kill('SIGKILL');
  const suspect = await when(
    'the node suspect',
    (e) => e.type === 'node' && e.subject === doomedId && e.action === 'suspect',
  );
  const down = await when(
    'the node down',
    (e) => e.type === 'node' && e.subject === doomedId && e.action === 'down',
  );
  const moved = await when(
    'its task moved',
    (e) => isTask(there.id, 'shutdown')(e) && /is down/.test(e.reason ?? ''),
  );
  // Suspect past --reschedule-after is enough to move its task: that may come before "down".
  t.true(again.at < suspect.at && suspect.at < down.at && suspect.at < moved.at, 'in that order');
  t.regex(moved.event.reason ?? '', new RegExp(`node ${doomedId} is down`));
});
