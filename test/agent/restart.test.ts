/**
 * An agent that stops and starts again keeps its tasks: killed (a crash), or stopped to restart
 * with SIGHUP (an upgrade, `systemctl reload`), its containers run on meanwhile, and the next run
 * takes them back as they are, not restarted. Its host changes (the service address on lo, the
 * range's unreachable route) go when it stops and come back with the next run. Told it restarts,
 * the cluster keeps its tasks on it past the reschedule grace. Stopped with SIGTERM, it leaves,
 * its tasks with it.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { RoutesResponse, StatusResponse, TaskRow } from '../../agent/control/api.js';
import { DEFAULT_SCHEDULER_OPTIONS } from '../../agent/scheduler/scheduler.js';
import { RESTART_EXIT_CODE } from '../../cli/install.js';
import { removeLabelled } from '../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../helpers/docker.js';
import {
  type AgentProcess,
  checkUnreachable,
  LocalCluster,
  meshJson,
  meshOn,
  nodeIdOf,
  nodesSeenBy,
  testRanges,
  waitForControl,
} from '../helpers/local-cluster.js';
import { bodyOnceAnswering, eventually } from '../helpers/poll.js';

const run = promisify(execFile);
const PAGE = 'mesh test page\n';

// Loopback blocks 127.0.97.0/24 (one node: its tasks have nowhere else to go) and 127.0.98.0/24
// (two nodes: the tasks could move to the first).
const ALONE = '127.0.97.1';
const PAIR = ['127.0.98.1', '127.0.98.2'];
const clusters: LocalCluster[] = [];
const clusterIds: string[] = [];

const STACK = (constraint: string) => `
services:
  web:
    image: ${TEST_IMAGE}
    command: httpd -f -p 8080 -h /www
    expose: ["8080"]
    deploy:
      placement: { constraints: [${constraint}] }
`;

test.after.always(async () => {
  await Promise.all(clusters.map((c) => c.close()));
  if (!('skip' in engine))
    for (const id of clusterIds) await removeLabelled(engine.docker, `mesh.cluster=${id}`);
});

/** A cluster of its own for a test (the two run at once): its agents and its ID. */
async function clusterOn(
  hosts: string[],
  label: string,
): Promise<[LocalCluster, AgentProcess[], string]> {
  const cluster = await LocalCluster.create(label);
  clusters.push(cluster);
  const agents = await cluster.start(hosts, label);
  const { clusterId } = await meshJson<StatusResponse>(agents[0] as AgentProcess, 'status');
  clusterIds.push(clusterId);
  await checkUnreachable(testRanges(hosts[0] as string).serviceRange);
  return [cluster, agents, clusterId];
}

const loAddresses = async () => (await run('ip', ['-o', '-4', 'addr', 'show', 'dev', 'lo'])).stdout;
const unreachableRoutes = async () =>
  (await run('ip', ['-o', 'route', 'show', 'type', 'unreachable'])).stdout;

/** The web service's address, once it serves the page there. */
async function servedAddress(agent: AgentProcess): Promise<string> {
  const address = (await meshJson<RoutesResponse>(agent, 'inspect', 'web')).services[0]?.address;
  if (!address) throw new Error('web has no service address');
  await bodyOnceAnswering(`http://${address}:8080/`, 'web through its address', 30_000);
  return address;
}

/** The one web container of the cluster, inspected; undefined when there is none. */
async function webContainer(clusterId: string) {
  if ('skip' in engine) return undefined;
  const [found] = await engine.docker.listContainers({
    filters: { label: [`mesh.cluster=${clusterId}`, 'mesh.service=web'] },
  });
  return found && (await engine.docker.getContainer(found.Id).inspect());
}

/** `mesh ps` once the agent's Raft has a leader again (a restarted agent serves before that). */
function tasksOnceAnswering(agent: AgentProcess): Promise<TaskRow[]> {
  return eventually(() => meshJson<TaskRow[]>(agent, 'ps', 'web').catch(() => undefined), {
    what: 'mesh ps answered',
    timeoutMs: 30_000,
    intervalMs: 300,
  });
}

dockerTest(
  'a lone node killed, or stopped with SIGHUP, takes its running task back unrestarted when it starts again; its host changes go and come back; SIGTERM takes all away',
  async (t) => {
    const [cluster, [first], clusterId] = await clusterOn([ALONE], 'restart');
    let agent = first as AgentProcess;
    const range = testRanges(ALONE).serviceRange;
    const deployed = await meshOn(
      agent,
      'deploy',
      '-c',
      cluster.file('rs.yml', STACK('node.role == manager')),
      'rs',
    );
    t.is(deployed.code, 0, deployed.stderr);
    const address = await servedAddress(agent);
    const url = `http://${address}:8080/`;
    const before = await webContainer(clusterId);
    const [task] = await meshJson<TaskRow[]>(agent, 'ps', 'web');
    const again = async () => {
      agent = cluster.spawn(basename(agent.dataDir), ['agent']);
      await waitForControl(agent);
      t.is(await bodyOnceAnswering(url, 'web again through its address', 30_000), PAGE);
      const now = await webContainer(clusterId);
      t.is(now?.Id, before?.Id, 'the same container');
      t.is(now?.State.StartedAt, before?.State.StartedAt, 'not restarted');
      const [taskNow] = await tasksOnceAnswering(agent);
      t.like(taskNow, { id: task?.id, state: 'running' });
      t.true((await loAddresses()).includes(`${address}/32`), 'the service address is back');
      t.true((await unreachableRoutes()).includes(range), 'the range route is back');
    };

    // A crash: nothing is withdrawn; the container runs on and answers on its own bridge.
    agent.child.kill('SIGKILL');
    await agent.exited;
    const during = await webContainer(clusterId);
    t.true(during?.State.Running, 'the task runs on while its agent is down');
    const bridgeAddress = Object.values(during?.NetworkSettings.Networks ?? {})[0]?.IPAddress;
    t.is(await (await fetch(`http://${bridgeAddress}:8080/`)).text(), PAGE);
    await again();

    // SIGHUP: it stops to restart; its host changes go, its task runs on.
    agent.child.kill('SIGHUP');
    t.is(await agent.exited, RESTART_EXIT_CODE);
    t.regex(
      readFileSync(`${agent.dataDir}.log`, 'utf8'),
      /mesh: stopped to restart; its tasks keep running/,
    );
    t.false((await loAddresses()).includes(`${address}/32`), 'the service address is gone');
    t.false((await unreachableRoutes()).includes(range), 'the range route is gone');
    t.true((await webContainer(clusterId))?.State.Running, 'the task runs on');
    await again();

    // SIGTERM: the node leaves, its task and its host changes with it.
    agent.child.kill('SIGTERM');
    t.is(await agent.exited, 0);
    t.false((await loAddresses()).includes(`${address}/32`));
    t.false((await unreachableRoutes()).includes(range));
    t.is(await webContainer(clusterId), undefined, 'its task stopped with it');
  },
);

dockerTest(
  'a node stopped with SIGHUP keeps its task past the reschedule grace, shown restarting, and serves it again when back',
  async (t) => {
    const [cluster, agents, clusterId] = await clusterOn(PAIR, 'restart-pair');
    const [first, second] = agents as [AgentProcess, AgentProcess];
    const secondId = await nodeIdOf(second);
    const deployed = await meshOn(
      first,
      'deploy',
      '-c',
      cluster.file('rs.yml', STACK(`node.id == ${secondId}`)),
      'rs',
    );
    t.is(deployed.code, 0, deployed.stderr);
    const address = await servedAddress(first);
    const before = await webContainer(clusterId);
    const [task] = await meshJson<TaskRow[]>(first, 'ps', 'web');
    t.is(task?.node, secondId);

    second.child.kill('SIGHUP');
    t.is(await second.exited, RESTART_EXIT_CODE);
    const seen = await eventually(
      async () =>
        (await nodesSeenBy(first.dataDir)).find((n) => n.id === secondId && n.status === 'dead'),
      { what: 'node 2 seen dead', timeoutMs: 20_000, intervalMs: 200 },
    );
    t.true(seen.restarting, 'shown restarting');
    t.regex((await meshOn(first, 'node', 'ls')).stdout, /dead \(restarting\)/);
    // Twice the reschedule grace, past its detection: a node merely dead would have lost it.
    const watchUntil = Date.now() + 2 * DEFAULT_SCHEDULER_OPTIONS.rescheduleAfterMs;
    while (Date.now() < watchUntil) {
      const tasks = await meshJson<TaskRow[]>(first, 'ps', 'web');
      t.deepEqual(
        tasks.map((x) => [x.id, x.node]),
        [[task?.id, secondId]],
        'the task stays on the restarting node',
      );
    }
    t.true((await webContainer(clusterId))?.State.Running, 'the task runs on');

    const back = cluster.spawn(basename(second.dataDir), ['agent']);
    await waitForControl(back);
    t.is(await bodyOnceAnswering(`http://${address}:8080/`, 'web served again', 30_000), PAGE);
    const now = await webContainer(clusterId);
    t.is(now?.Id, before?.Id, 'the same container');
    t.is(now?.State.StartedAt, before?.State.StartedAt, 'not restarted');
    const row = await eventually(
      async () =>
        (await nodesSeenBy(first.dataDir)).find((n) => n.id === secondId && n.status === 'alive'),
      { what: 'node 2 alive again', timeoutMs: 20_000, intervalMs: 200 },
    );
    t.false(row.restarting);
  },
);
