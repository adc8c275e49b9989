import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import test from 'ava';
import { DockerRuntime } from '../../../agent/runtime/docker.js';
import { LABEL } from '../../../agent/runtime/docker-labels.js';
import type { TaskSpec } from '../../../agent/runtime/runtime.js';
import { removeLabelled } from '../../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../../helpers/docker.js';
import { captureLogs } from '../../helpers/logs.js';
import { bodyOnceAnswering, eventually } from '../../helpers/poll.js';

// This file's loopback block: 127.0.18.0/24; its containers carry a cluster label of its own.
const HOST = '127.0.18.1';
const HOST_PORT = 18_018;
const run = promisify(execFile);
const clusterId = `ctest-runtime-${randomBytes(4).toString('hex')}`;

function runtime(nodeId = 'n1') {
  if (!('docker' in engine)) throw new Error('no engine');
  return new DockerRuntime({
    docker: engine.docker,
    clusterId,
    nodeId,
    hostIp: HOST,
    log: captureLogs(nodeId).log,
  });
}

function spec(taskId: string, overrides: Partial<TaskSpec> = {}): TaskSpec {
  return {
    taskId,
    stack: 'shop',
    service: 'web',
    image: TEST_IMAGE,
    command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
    env: { GREETING: 'hello' },
    ports: [{ target: 8080, protocol: 'tcp' }],
    labels: { team: 'blue' },
    resources: { cpus: 0.5, memoryBytes: 64 * 2 ** 20 },
    stopGracePeriodMs: 1000,
    ...overrides,
  };
}

test.after.always(async () => {
  if ('docker' in engine) await removeLabelled(engine.docker, `${LABEL.cluster}=${clusterId}`);
});

dockerTest(
  'a task runs with its labels and limits, published on the node address',
  async (t, docker) => {
    const r = runtime();
    t.teardown(() => r.close());
    const observed = await r.start(
      spec('t1', { ports: [{ target: 8080, protocol: 'tcp', hostPort: HOST_PORT }] }),
    );
    t.is(observed.state, 'running');
    const [port] = observed.ports;
    t.is(port?.hostIp, HOST, 'bound to the node address, not every interface');
    t.is(port?.hostPort, HOST_PORT, 'on the port asked for (mode host)');
    const page = await bodyOnceAnswering(`http://${HOST}:${port?.hostPort}/`, 'the task answering');
    t.is(page, 'mesh test page\n');

    const [container] = await docker.listContainers({ filters: { label: [`${LABEL.task}=t1`] } });
    const info = await docker.getContainer(container?.Id ?? '').inspect();
    t.like(info.Config.Labels, {
      [LABEL.cluster]: clusterId,
      [LABEL.node]: 'n1',
      [LABEL.stack]: 'shop',
      [LABEL.service]: 'web',
      [LABEL.task]: 't1',
      team: 'blue',
    });
    t.true(info.Config.Env.includes('GREETING=hello'));
    t.is(info.HostConfig.NanoCpus, 5e8);
    t.is(info.HostConfig.Memory, 64 * 2 ** 20);
    t.is(
      info.HostConfig.RestartPolicy?.Name,
      'no',
      'mesh, not the engine, applies restart policies',
    );
  },
);

dockerTest(
  'a task joins its stack bridge (a /24 of the bridge range) with the cluster DNS; the bridge goes with its last task',
  async (t, docker) => {
    const r = runtime('n5');
    t.teardown(() => r.close());
    // No agent serves this DNS address here: its range is routed unreachable first, so a query
    // the container might send never leaves the machine (and the bridge range's other /24s too).
    for (const range of ['10.250.18.0/24', '10.239.18.0/23']) {
      await run('ip', ['route', 'replace', 'unreachable', range]);
      t.teardown(() => run('ip', ['route', 'del', 'unreachable', range]).then(() => undefined));
    }
    const network = {
      keys: ['shop_default'],
      bridgeRange: '10.239.18.0/23',
      dnsServer: '10.250.18.1',
      search: 'shop.mesh',
    };
    const observed = await r.start(spec('t5', { ports: [], network }));
    t.regex(
      observed.address ?? '',
      /^10\.239\.1[89]\.\d+$/,
      'reachable at its address on the bridge',
    );
    const [container] = await docker.listContainers({ filters: { label: [`${LABEL.task}=t5`] } });
    const info = await docker.getContainer(container?.Id ?? '').inspect();
    t.deepEqual(info.HostConfig.Dns, ['10.250.18.1']);
    t.deepEqual(info.HostConfig.DnsSearch, ['shop.mesh']);
    const { bridges, containers } = await r.hostNetworks();
    const [subnet] = bridges.filter((b) => b.network === 'shop_default').map((b) => b.subnet);
    t.regex(subnet ?? '', /^10\.239\.1[89]\.0\/24$/, 'a /24 of the bridge range');
    t.is(
      observed.address?.split('.').slice(0, 3).join('.'),
      subnet?.split('.').slice(0, 3).join('.'),
    );
    t.true(
      containers.some(
        (c) => c.addresses.includes(observed.address ?? '') && c.networks.includes('shop_default'),
      ),
      'the container is listed with its address on the network',
    );
    await r.remove('t5', 1000);
    const left = await docker.listNetworks({ filters: { label: [`${LABEL.node}=n5`] } });
    t.is(left.length, 0, 'the bridge was removed with its last container');
  },
);

dockerTest("list finds this node's tasks; remove stops and deletes them", async (t) => {
  const r = runtime();
  t.teardown(() => r.close());
  await r.start(spec('t2'));
  t.true((await r.list()).some((o) => o.taskId === 't2' && o.state === 'running'));
  await r.remove('t2', 1000);
  t.is(await r.inspect('t2'), undefined);
  t.false((await r.list()).some((o) => o.taskId === 't2'));
});

dockerTest('a task that exits is announced, and inspect tells its exit code', async (t) => {
  const r = runtime();
  t.teardown(() => r.close());
  const changed: string[] = [];
  await r.onChange((taskId) => changed.push(taskId));
  await r.start(spec('t3', { command: ['sh', '-c', 'sleep 0.3; exit 3'], ports: [] }));
  await eventually(() => changed.includes('t3'), { what: 'exit event', timeoutMs: 10_000 });
  t.like(await r.inspect('t3'), { state: 'exited', exitCode: 3, reason: 'exited with code 3' });
});

dockerTest('an image that is neither here nor pullable fails with a clear reason', async (t) => {
  const r = runtime();
  t.teardown(() => r.close());
  // A registry on a loopback address where nothing listens: the pull fails without leaving the machine.
  const error = await t.throwsAsync(
    r.start(spec('t4', { image: '127.0.18.250:5999/mesh/missing:1' })),
  );
  t.regex(
    error?.message ?? '',
    /^image 127\.0\.18\.250:5999\/mesh\/missing:1 is not on this node and could not be pulled: /,
  );
  t.is(await r.inspect('t4'), undefined, 'nothing left behind');
});

dockerTest("a node hears only its own tasks' exits, though nodes share the engine", async (t) => {
  const mine = runtime('n2');
  const theirs = runtime('n3');
  t.teardown(() => Promise.all([mine.close(), theirs.close()]).then(() => undefined));
  const heard: string[] = [];
  await mine.onChange((taskId) => heard.push(taskId));
  const quick = { command: ['sh', '-c', 'sleep 0.2; exit 4'], ports: [] };
  await theirs.start(spec('other-node-task', quick));
  await eventually(async () => (await theirs.inspect('other-node-task'))?.state === 'exited', {
    what: "the other node's task ended",
    timeoutMs: 10_000,
  });
  await mine.start(spec('own-task', quick));
  await eventually(() => heard.length > 0, { what: 'an exit heard', timeoutMs: 10_000 });
  t.deepEqual(heard, ['own-task'], 'the other node ended first, and was not heard');
});

dockerTest(
  "compose's per-container settings reach the engine; a logging driver that keeps logs unreadable is named",
  async (t, docker) => {
    const r = runtime();
    t.teardown(() => r.close());
    await r.start(
      spec('t-settings', {
        command: ['sh', '-c', 'id -u > /tmp/uid; exec sleep 600'],
        ports: [],
        container: {
          user: '1000:1000',
          workingDir: '/tmp',
          hostname: 'settings-test',
          init: true,
          readOnly: true,
          tmpfs: ['/tmp:size=1m'],
          ulimits: { nofile: { soft: 512, hard: 1024 } },
          capDrop: ['NET_RAW'],
          stopSignal: 'SIGUSR1',
          shmSizeBytes: 8 * 2 ** 20,
          extraHosts: ['db.internal:127.0.18.9'],
          groupAdd: ['1234'],
          pidsLimit: 64,
          oomScoreAdj: 100,
          logging: { driver: 'none', options: {} },
        },
      }),
    );
    const [container] = await docker.listContainers({
      filters: { label: [`${LABEL.task}=t-settings`] },
    });
    const info = await docker.getContainer(container?.Id ?? '').inspect();
    t.like(info.Config, {
      User: '1000:1000',
      WorkingDir: '/tmp',
      Hostname: 'settings-test',
      StopSignal: 'SIGUSR1',
    });
    t.like(info.HostConfig, {
      Init: true,
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'size=1m' },
      CapDrop: ['NET_RAW'],
      ShmSize: 8 * 2 ** 20,
      ExtraHosts: ['db.internal:127.0.18.9'],
      GroupAdd: ['1234'],
      PidsLimit: 64,
      OomScoreAdj: 100,
      LogConfig: { Type: 'none', Config: {} },
    });
    t.deepEqual(info.HostConfig.Ulimits, [{ Name: 'nofile', Soft: 512, Hard: 1024 }]);
    const error = await t.throwsAsync(r.logs('t-settings', undefined, 10));
    t.regex(
      error?.message ?? '',
      /its logging driver \(none\) keeps the engine from reading its logs/,
    );
  },
);
