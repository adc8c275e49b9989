import { execFile } from 'node:child_process';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { StatusResponse, TaskRow, VolumeRow } from '../../../agent/control/api.js';
import { removeLabelled } from '../../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../../helpers/docker.js';
import {
  type AgentProcess,
  agreed,
  LocalCluster,
  meshJson,
  meshOn,
  nodeIdOf,
  waitForControl,
} from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';

const run = promisify(execFile);

// Loopback block 127.0.37.0/24: three nodes, all voters, so any one can be lost.
const HOSTS = ['127.0.37.1', '127.0.37.2', '127.0.37.3'];
const cluster = await LocalCluster.create('volumes');
let agents: AgentProcess[] = [];
let clusterId = '';

/** A store that counts its starts in its volume. */
const STACK = `
services:
  store:
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "date >> /data/starts; exec sleep 600"]
    volumes: ["data:/data"]
    stop_grace_period: 1s
    deploy:
      restart_policy: { condition: any, delay: 100ms }
volumes:
  data: {}
`;

test.before(async () => {
  if ('skip' in engine) return;
  agents = await cluster.start(HOSTS, 'vol');
  clusterId = (await meshJson<StatusResponse>(agents[0] as AgentProcess, 'status')).clusterId;
});

test.after.always(async () => {
  await cluster.close();
  if (!('skip' in engine) && clusterId)
    await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
});

dockerTest(
  'a named volume keeps its data across container replacement and an agent restart; its service waits for a dead node rather than start empty',
  async (t, docker) => {
    const file = cluster.file('vol.yml', STACK);
    const [first] = agents as [AgentProcess];
    await eventually(
      async () => (await meshOn(first, 'deploy', '-c', file, 'vol', '--timeout', '60s')).code === 0,
      {
        what: 'the stack deployed once the nodes are recorded',
        timeoutMs: 90_000,
        intervalMs: 500,
      },
    );
    // The volume's node is killed below: the two others must hold a quorum without it.
    await agreed(agents, (v) => v.raft.voters.length === 3, 60_000);
    const [volume] = await meshJson<VolumeRow[]>(first, 'volume', 'ls');
    t.like(volume, { name: 'vol_data', services: ['vol.store'] });
    const ids = await Promise.all(agents.map(nodeIdOf));
    const host = agents[ids.indexOf(volume?.node ?? '')] as AgentProcess;
    t.truthy(host, 'the volume is on one of the nodes');
    const [task] = await meshJson<TaskRow[]>(first, 'ps', 'vol');
    t.is(task?.node, volume?.node, 'the task runs where its volume is');
    t.deepEqual(task?.pinnedBy, { volume: 'vol_data', node: volume?.node });
    t.regex(
      (await meshOn(first, 'inspect', 'store')).stdout,
      new RegExp(`pinned to node ${volume?.node} \\(ready\\) by volume vol_data`),
    );

    const container = async () => {
      const [c] = await docker.listContainers({
        filters: {
          label: [`mesh.cluster=${clusterId}`, 'mesh.service=store'],
          status: ['running'],
        },
      });
      return c?.Id;
    };
    const starts = async () => {
      const id = await eventually(container, { what: 'store running', timeoutMs: 20_000 });
      const { stdout } = await run('docker', ['exec', id as string, 'cat', '/data/starts']);
      return stdout.trim().split('\n').length;
    };
    t.is(await starts(), 1);
    // The container is replaced (killed, restarted by its policy): the volume keeps its data.
    const before = await container();
    await docker.getContainer(before ?? '').kill();
    await eventually(async () => (await container()) !== before && (await container()), {
      what: 'a new store container',
      timeoutMs: 20_000,
    });
    t.is(await starts(), 2, 'the second container found the first one’s data');

    // Its node's agent restarts: the data is still there for the next container.
    host.child.kill('SIGKILL');
    await host.exited;
    const again = cluster.spawn(basename(host.dataDir), ['agent']);
    await waitForControl(again);
    const running = await container();
    await docker.getContainer(running ?? '').kill();
    await eventually(async () => (await container()) !== running && (await container()), {
      what: 'a store container after the agent restart',
      timeoutMs: 30_000,
    });
    t.is(await starts(), 3);

    // Its node is gone (agent killed, containers with it): the store waits, saying why.
    again.child.kill('SIGKILL');
    await again.exited;
    await removeLabelled(docker, `mesh.node=${volume?.node}`);
    const alive = agents.find((a) => a !== host) as AgentProcess;
    const pending = await eventually(
      async () => {
        const tasks = await meshJson<TaskRow[]>(alive, 'ps', 'vol').catch(() => []);
        return tasks.find((x) => x.state === 'pending');
      },
      { what: 'the store pending', timeoutMs: 30_000, intervalMs: 300 },
    );
    t.regex(
      pending?.reason ?? '',
      /^its volume vol_data is on node n[0-9a-f]+, which is down: it waits there rather than start elsewhere on an empty volume$/,
    );
    t.is(await container(), undefined, 'no store started on another node');
  },
);
