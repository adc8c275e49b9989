import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StatusResponse, TaskRow } from '../../agent/control/api.js';
import { removeLabelled } from '../helpers/containers.js';
import { dockerTest, TEST_IMAGE } from '../helpers/docker.js';
import { LocalCluster, meshJson, meshOn, nodeIdOf } from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

// Loopback block 127.0.54.0/24: one agent, whose engine socket answers only once the test says.
const HOST = '127.0.54.1';

const STACK = `name: late
services:
  job:
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "while true; do sleep 1; done"]
    stop_grace_period: 1s
`;

/** A Unix socket that passes every connection on to the engine's own, from when it listens. */
function engineRelay(path: string, engineSocket: string): Promise<Server> {
  const relay = createServer((client) => {
    const engine = connect(engineSocket);
    client.pipe(engine).pipe(client);
    client.on('error', () => engine.destroy());
    engine.on('error', () => client.destroy());
  });
  return new Promise((resolve, reject) => {
    relay.once('error', reject);
    relay.listen(path, () => resolve(relay));
  });
}

/** The runtimes the cluster recorded for the node, once it recorded them. */
async function runtimesOf(agent: Parameters<typeof meshOn>[0], nodeId: string) {
  const found = await meshOn(agent, 'node', 'inspect', nodeId);
  if (found.code !== 0) return undefined;
  const runtimes = (JSON.parse(found.stdout) as { runtimes: string[] }).runtimes;
  return runtimes.length > 0 ? runtimes.join(' ') : undefined;
}

dockerTest(
  'an engine that answers only after the agent started is used without a restart',
  async (t, docker) => {
    const socketDir = mkdtempSync(join(tmpdir(), 'mesh-engine-later-'));
    const socket = join(socketDir, 'docker.sock');
    // The engine this test run reaches (docker-modem's default is a function that finds it).
    const { socketPath } = docker.modem as { socketPath?: unknown };
    const engineSocket = typeof socketPath === 'string' ? socketPath : '/var/run/docker.sock';
    // The agent (a child of this worker) looks for its engine here; nothing listens yet.
    process.env.DOCKER_HOST = `unix://${socket}`;
    const cluster = await LocalCluster.create('engine-later');
    let relay: Server | undefined;
    let clusterId = '';
    t.teardown(async () => {
      await cluster.close();
      relay?.close();
      rmSync(socketDir, { recursive: true, force: true });
      if (clusterId) await removeLabelled(docker, `mesh.cluster=${clusterId}`);
    });
    const [agent] = await cluster.start([HOST], 'el');
    delete process.env.DOCKER_HOST;
    if (!agent) throw new Error('no agent started');
    clusterId = (await meshJson<StatusResponse>(agent, 'status')).clusterId;
    const nodeId = await nodeIdOf(agent);
    t.is(
      await eventually(() => runtimesOf(agent, nodeId), {
        what: 'the node recorded',
        timeoutMs: 15_000,
      }),
      'process',
    );

    const deployed = await meshOn(
      agent,
      'deploy',
      '-c',
      cluster.file('late.yml', STACK),
      '--detach',
    );
    t.is(deployed.code, 0, deployed.stderr);
    const waiting = await eventually(
      async () => (await meshJson<TaskRow[]>(agent, 'ps', 'late'))[0],
      { what: 'the task listed', timeoutMs: 10_000, intervalMs: 200 },
    );
    t.is(waiting?.state, 'pending');
    t.regex(waiting?.reason ?? '', /^no ready node has a Docker Engine/);

    relay = await engineRelay(socket, engineSocket);
    await eventually(
      async () => (await meshJson<TaskRow[]>(agent, 'ps', 'late'))[0]?.state === 'running',
      { what: 'the task running on the engine that came up', timeoutMs: 40_000, intervalMs: 300 },
    );
    t.is(await runtimesOf(agent, nodeId), 'docker process');
    t.regex(
      readFileSync(join(cluster.root, 'el1.log'), 'utf8'),
      /Docker Engine reachable now: docker services can run on this node/,
    );
    const containers = await docker.listContainers({
      filters: { label: [`mesh.cluster=${clusterId}`] },
    });
    t.is(containers.length, 1, 'its container runs on the engine');
  },
);
