import test from 'ava';
import type { NodeRow, ServiceRow, StatusResponse, TaskRow } from '../../../agent/control/api.js';
import { removeLabelled } from '../../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../../helpers/docker.js';
import {
  type AgentProcess,
  LocalCluster,
  meshJson,
  meshOn,
  nodeIdOf,
  nodesSeenBy,
  waitForControl,
} from '../../helpers/local-cluster.js';
import { bodyOnceAnswering, eventually } from '../../helpers/poll.js';

// Loopback block 127.0.22.0/24: three agents, one per address, publishing container ports there.
const HOSTS = ['127.0.22.1', '127.0.22.2', '127.0.22.3'];
/** `mesh ls --json` where no service is damaged. */
type Listed = Array<{ name: string; services: ServiceRow[] }>;
const cluster = await LocalCluster.create('stacks');
let agents: AgentProcess[] = [];
let clusterId = '';

const SHOP = `
services:
  web:
    image: ${TEST_IMAGE}
    command: httpd -f -p 8080 -h /www
    ports: ["18022:8080"]
    stop_grace_period: 1s
    deploy:
      replicas: 3
      restart_policy: { condition: any, delay: 200ms }
  worker:
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "echo worker up; while true; do sleep 1; done"]
    stop_grace_period: 1s
    depends_on: [web]
    deploy:
      replicas: 2
`;

/** Running tasks of a service, once `check` holds for them. */
function tasksWhen(
  agent: AgentProcess,
  service: string,
  check: (tasks: TaskRow[]) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<TaskRow[]> {
  return eventually(
    async () => {
      const tasks = (await meshJson<TaskRow[]>(agent, 'ps', service)).filter(
        (t) => t.desired === 'running',
      );
      return check(tasks) && tasks;
    },
    { what, timeoutMs, intervalMs: 200 },
  ) as Promise<TaskRow[]>;
}

const allRunning = (n: number) => (tasks: TaskRow[]) =>
  tasks.length === n && tasks.every((t) => t.state === 'running');

test.before(async () => {
  if ('skip' in engine) return;
  agents = await cluster.start(HOSTS, 'stacks', ['--reschedule-after', '2s']);
  const status = await meshJson<StatusResponse>(agents[0] as AgentProcess, 'status');
  clusterId = status.clusterId;
  // Every node alive, recorded and a voter: the scheduler spreads over all three, and any one
  // of them can be killed without losing the quorum.
  await eventually(
    async () => {
      const nodes = await nodesSeenBy((agents[0] as AgentProcess).dataDir);
      return (
        nodes.length === 3 &&
        nodes.every((n) => n.status === 'alive' && n.recorded && n.raft === 'voter')
      );
    },
    { what: 'three nodes alive, recorded and voters', timeoutMs: 30_000, intervalMs: 200 },
  );
});

test.after.always(async () => {
  await cluster.close();
  if (!('skip' in engine) && clusterId)
    await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
});

dockerTest(
  'deploy spreads the replicas of a 2-service stack; ps, ls and the pages are right',
  async (t) => {
    const [a, b, c] = agents as [AgentProcess, AgentProcess, AgentProcess];
    const deployed = await meshOn(b, 'deploy', '-c', cluster.file('shop.yml', SHOP), 'shop');
    t.is(deployed.code, 0, deployed.stderr);
    t.regex(deployed.stderr, /shop\.web: 3\/3 ready/);
    t.regex(deployed.stderr, /stack shop converged/);
    const web = await tasksWhen(c, 'web', allRunning(3), '3 web tasks running');
    t.is(new Set(web.map((task) => task.node)).size, 3, 'one web replica per node');
    const worker = await tasksWhen(a, 'shop.worker', allRunning(2), '2 worker tasks running');
    t.is(new Set(worker.map((task) => task.node)).size, 2);
    // Published in ingress mode: every node answers on the port, through the routing mesh.
    for (const host of HOSTS)
      t.regex(
        await bodyOnceAnswering(`http://${host}:18022/`, `the page through ${host}`),
        /mesh test page/,
      );
    const stacks = await meshJson<Listed>(a, 'ls');
    t.deepEqual(
      stacks.map((s) => s.services.map((v) => [v.id, v.running, v.desired])),
      [
        [
          ['shop.web', 3, 3],
          ['shop.worker', 2, 2],
        ],
      ],
    );
    const logs = await eventually(
      async () => {
        const { stdout } = await meshOn(c, 'logs', 'worker');
        const up = stdout.split('\n').filter((l) => l.includes('worker up'));
        return up.length === 2 ? stdout : undefined;
      },
      { what: 'worker logs from both tasks', timeoutMs: 10_000, intervalMs: 200 },
    );
    t.regex(logs ?? '', /^shop\.worker\.\d\.[0-9a-f]+ \| worker up$/m);
  },
);

dockerTest('a killed container is restarted on the same node per its restart policy', async (t) => {
  const [a] = agents as [AgentProcess];
  const [victim] = await tasksWhen(a, 'web', allRunning(3), 'web running');
  const docker = 'skip' in engine ? undefined : engine.docker;
  const [container] =
    (await docker?.listContainers({
      filters: { label: [`mesh.task=${victim?.id}`] },
    })) ?? [];
  t.truthy(container);
  await docker?.getContainer((container as { Id: string }).Id).kill();
  const after = await tasksWhen(
    a,
    'web',
    (tasks) => allRunning(3)(tasks) && tasks.some((x) => x.id === victim?.id && x.restarts === 1),
    'the killed task running again',
  );
  const again = after.find((x) => x.id === victim?.id);
  t.is(again?.node, victim?.node, 'same node');
});

dockerTest(
  'a health check gates running; a failing one restarts the task, saying why',
  async (t) => {
    const [a] = agents as [AgentProcess];
    t.teardown(async () => {
      await meshOn(a, 'rm', 'health');
    });
    // Ready after 2 s; failures within the start period do not count.
    const checked = cluster.file(
      'health.yml',
      `
services:
  checked:
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "sleep 2; touch /tmp/ready; sleep 600"]
    stop_grace_period: 1s
    healthcheck: { test: "test -f /tmp/ready", interval: 300ms, retries: 1, start_period: 20s }
`,
    );
    const deployed = await meshOn(a, 'deploy', '-c', checked, 'health');
    t.is(deployed.code, 0, deployed.stderr);
    t.regex(
      deployed.stderr,
      /health\.checked: 0\/1 ready \(.*starting: waiting for its health check\)/,
    );
    t.regex(deployed.stderr, /stack health converged/);

    // Without a healthcheck: ready once its port accepts connections, not once its process runs.
    const slow = cluster.file(
      'slow.yml',
      `
services:
  slow:
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "sleep 3; exec nc -ll -p 5432 -e cat"]
    expose: ["5432"]
    stop_grace_period: 1s
`,
    );
    const listening = await meshOn(a, 'deploy', '-c', slow, 'health');
    t.is(listening.code, 0, listening.stderr);
    t.regex(
      listening.stderr,
      /health\.slow: 0\/1 ready \(.*not ready: waiting for port 5432 \(ECONNREFUSED\)\)/,
    );
    t.regex(listening.stderr, /stack health converged/);
    const [ready] = await meshJson<TaskRow[]>(a, 'ps', 'slow');
    t.like(ready, { state: 'running', ready: true, probe: 'port 5432 accepts connections' });

    const sick = cluster.file(
      'sick.yml',
      `
services:
  sick:
    image: ${TEST_IMAGE}
    command: ["sleep", "600"]
    stop_grace_period: 1s
    healthcheck: { test: "false", interval: 300ms, retries: 2 }
    deploy:
      restart_policy: { delay: 2s }
`,
    );
    t.is((await meshOn(a, 'deploy', '-c', sick, 'health', '--detach')).code, 0);
    const [restarting] = await tasksWhen(
      a,
      'sick',
      (tasks) => tasks[0]?.state === 'restarting',
      'the unhealthy task waiting out its restart delay',
    );
    t.regex(
      restarting?.reason ?? '',
      /^health check failing \(2 failures in a row; last: exit 1\); restart 1 in 2s$/,
    );
    await tasksWhen(
      a,
      'sick',
      (tasks) => (tasks[0]?.restarts ?? 0) >= 1,
      'the unhealthy task restarted',
    );
  },
);

dockerTest(
  'kill -9 an agent and remove its containers: its replicas come up on the others',
  async (t) => {
    const [a, b] = agents as [AgentProcess, AgentProcess];
    const lost = await nodeIdOf(b);
    b.child.kill('SIGKILL');
    await b.exited;
    if (!('skip' in engine)) await removeLabelled(engine.docker, `mesh.node=${lost}`);
    const web = await tasksWhen(
      a,
      'web',
      (tasks) => allRunning(3)(tasks) && tasks.every((x) => x.node !== lost),
      'web replicas off the dead node',
    );
    t.false(web.some((x) => x.node === lost));
    await tasksWhen(
      a,
      'worker',
      (tasks) => allRunning(2)(tasks) && tasks.every((x) => x.node !== lost),
      'worker replicas off the dead node',
    );
    // It comes back from its data dir; what it ran before is gone and it runs nothing it should not.
    const back = cluster.spawn('stacks2', ['agent']);
    agents[1] = back;
    await waitForControl(back);
    await eventually(
      async () => (await nodesSeenBy(a.dataDir)).every((n) => n.status === 'alive'),
      { what: 'the node alive again', timeoutMs: 20_000, intervalMs: 200 },
    );
  },
);

dockerTest(
  'scale up and down, drain a node, rm the stack: no container left, history included',
  async (t) => {
    const [a, b, c] = agents as [AgentProcess, AgentProcess, AgentProcess];
    t.is((await meshOn(a, 'scale', 'web=5')).code, 0);
    await tasksWhen(a, 'web', allRunning(5), '5 web tasks');
    t.is((await meshOn(c, 'scale', 'shop.web=2')).code, 0);
    const two = await tasksWhen(a, 'web', allRunning(2), '2 web tasks');
    t.deepEqual(two.map((x) => x.slot).sort(), [1, 2], 'scale-down keeps the lowest slots');

    const drained = await nodeIdOf(c);
    const drain = await meshOn(a, 'node', 'drain', drained);
    t.is(drain.code, 0, drain.stderr);
    await tasksWhen(
      a,
      'shop',
      (tasks) =>
        tasks.length === 4 && tasks.every((x) => x.state === 'running' && x.node !== drained),
      'every task off the drained node',
    );
    // Its tasks stop within their grace period; their containers stay, stopped, as the slots'
    // history (as Swarm's do) until the stack goes.
    await eventually(
      async () =>
        'skip' in engine ||
        (
          await engine.docker.listContainers({
            filters: { label: [`mesh.node=${drained}`], status: ['running'] },
          })
        ).length === 0,
      { what: 'no container running on the drained node', timeoutMs: 15_000, intervalMs: 200 },
    );
    t.is((await meshOn(a, 'node', 'activate', drained)).code, 0);

    const removed = await meshOn(b, 'rm', 'shop');
    t.is(removed.code, 0, removed.stderr);
    t.deepEqual(await meshJson<Listed>(a, 'ls'), []);
    if (!('skip' in engine)) {
      const containers = await engine.docker.listContainers({
        all: true,
        filters: { label: [`mesh.cluster=${clusterId}`, 'mesh.stack=shop'] },
      });
      t.is(containers.length, 0, 'no container of the stack on any node');
    }
  },
);

dockerTest('a node label set with mesh node label steers a placement constraint', async (t) => {
  const [a, , c] = agents as [AgentProcess, AgentProcess, AgentProcess];
  t.teardown(async () => {
    await meshOn(a, 'rm', 'edge');
  });
  const edge = await nodeIdOf(c);
  const file = cluster.file(
    'edge.yml',
    `
services:
  cache:
    image: ${TEST_IMAGE}
    command: ["sleep", "600"]
    stop_grace_period: 1s
    deploy:
      replicas: 2
      placement: { constraints: ["node.labels.zone == edge"] }
`,
  );
  // Before any node has the label: deployed all the same, as Swarm does; the tasks wait, saying why.
  const deployed = await meshOn(a, 'deploy', '-c', file, 'edge');
  t.is(deployed.code, 0, deployed.stderr);
  t.regex(deployed.stderr, /warning: service cache: no node satisfies node\.labels\.zone == edge/);
  t.regex(deployed.stderr, /edge\.cache waits for a node that fits/);
  const pending = await tasksWhen(
    a,
    'cache',
    (all) => all.length === 2 && all.every((task) => task.state === 'pending'),
    'both cache tasks pending before the label',
  );
  t.regex(pending[0]?.reason ?? '', /^no node satisfies the constraints/);
  const labelled = await meshOn(a, 'node', 'label', edge, 'zone=edge', 'tier=2');
  t.is(labelled.code, 0, labelled.stderr);
  t.regex(labelled.stdout, /labels \{"zone":"edge","tier":"2"\}/);
  // node ls shows what a Swarm user reads there: host name, availability, manager status, and
  // the labels just set.
  const listed = await meshJson<NodeRow[]>(a, 'node', 'ls');
  t.like(
    listed.find((n) => n.id === edge),
    { labels: { zone: 'edge', tier: '2' }, availability: 'active' },
  );
  t.true(listed.every((n) => n.hostname !== ''));
  t.deepEqual(listed.map((n) => n.manager).sort(), ['leader', 'reachable', 'reachable']);
  const table = (await meshOn(a, 'node', 'ls')).stdout;
  t.regex(table, /^ID\s+HOSTNAME\s+ADDRESS\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS/);
  t.regex(table, /zone=edge/);
  const tasks = await tasksWhen(a, 'cache', allRunning(2), 'both cache tasks running');
  t.deepEqual(
    tasks.map((task) => task.node),
    [edge, edge],
  );
  t.is((await meshOn(a, 'node', 'label', edge, 'tier-')).code, 0);
  const node = JSON.parse((await meshOn(a, 'node', 'inspect', edge)).stdout) as {
    userLabels: Record<string, string>;
  };
  t.deepEqual(node.userLabels, { zone: 'edge' });
  // Without the label the tasks no longer fit there, and nowhere else: they wait, saying why.
  t.is((await meshOn(a, 'node', 'label', edge, 'zone-')).code, 0);
  const waiting = await tasksWhen(
    a,
    'cache',
    (all) => all.length === 2 && all.every((task) => task.state === 'pending'),
    'both cache tasks pending',
  );
  t.regex(
    waiting[0]?.reason ?? '',
    /^no node satisfies the constraints: node\.labels\.zone == edge$/,
  );
});

const UPDATABLE = (command: string) => `
services:
  api:
    image: ${TEST_IMAGE}
    command: ${command}
    stop_grace_period: 1s
    deploy:
      replicas: 2
      restart_policy: { condition: on-failure, delay: 100ms, max_attempts: 1 }
      # 2 s, not the default 5 s: long enough to see a failing version exit, short for four rollouts.
      update_config: { parallelism: 1, failure_action: rollback, monitor: 2s }
`;

dockerTest(
  'an update rolls out; one whose tasks fail rolls back by itself; mesh rollback goes back',
  async (t) => {
    const [a] = agents as [AgentProcess];
    const file = cluster.file('upd.yml', UPDATABLE('["sh", "-c", "echo v1; sleep 600"]'));
    t.is((await meshOn(a, 'deploy', '-c', file, 'upd')).code, 0);
    const v2 = cluster.file('upd2.yml', UPDATABLE('["sh", "-c", "echo v2; sleep 600"]'));
    const updated = await meshOn(a, 'deploy', '-c', v2, 'upd');
    t.is(updated.code, 0, updated.stderr);
    t.regex(updated.stderr, /updated upd\.api \(version 2\)/);
    t.regex(
      updated.stderr,
      /upd\.api: [01]\/2 ready, 1\/2 updated, [12] to replace/,
      'one task replaced at a time',
    );

    const rolled = await meshOn(a, 'rollback', 'upd.api');
    t.is(rolled.code, 0, rolled.stderr);
    t.regex(rolled.stderr, /rolling upd\.api back \(version 3\)/);
    await eventually(async () => /\| v1$/m.test((await meshOn(a, 'logs', 'api')).stdout), {
      what: 'version 1 running again',
      timeoutMs: 15_000,
      intervalMs: 200,
    });

    const broken = cluster.file('upd3.yml', UPDATABLE('["sh", "-c", "exit 3"]'));
    const failing = await meshOn(a, 'deploy', '-c', broken, 'upd', '--detach');
    t.is(failing.code, 0, failing.stderr);
    await eventually(
      async () => {
        const [stack] = await meshJson<Listed>(a, 'ls');
        const api = stack?.services.find((s) => s.id === 'upd.api');
        return api?.version === 5 && api.running === 2;
      },
      {
        what: 'version 4 failed; version 5 (version 1 again) running',
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    );
    t.regex((await meshOn(a, 'logs', 'api')).stdout, /\| v1$/m);
    t.is((await meshOn(a, 'rm', 'upd')).code, 0);
  },
);

dockerTest('an image that cannot be pulled fails the rollout with the reason', async (t) => {
  const [a] = agents as [AgentProcess];
  t.teardown(async () => {
    await meshOn(a, 'rm', 'nopull');
  });
  // A registry on a loopback port nobody listens on: the pull fails at once, nothing leaves the host.
  const file = cluster.file(
    'nopull.yml',
    `
services:
  app:
    image: 127.0.22.250:9/mesh-test/missing:1
    deploy:
      restart_policy: { delay: 100ms, max_attempts: 2 }
`,
  );
  const deployed = await meshOn(a, 'deploy', '-c', file, 'nopull');
  t.is(deployed.code, 1);
  t.regex(
    deployed.stderr,
    /rollout of nopull failed: nopull\.app\.1\.[0-9a-f]+ failed: image 127\.0\.22\.250:9\/mesh-test\/missing:1 is not on this node and could not be pulled: .*; gave up after 2 restarts/,
  );
  const [task] = (await meshJson<TaskRow[]>(a, 'ps', 'nopull')) as TaskRow[];
  t.is(task?.state, 'failed');
});

dockerTest('invalid stack files are refused with their place, and nothing changes', async (t) => {
  const [a] = agents as [AgentProcess];
  const ok = await meshOn(
    a,
    'deploy',
    '-c',
    cluster.file(
      'keep.yml',
      SHOP.replace('replicas: 3', 'replicas: 1').replace('"18022:8080"', '"18080:8080"'),
    ),
    'keep',
  );
  t.is(ok.code, 0, ok.stderr);
  const seen = async () =>
    JSON.stringify([
      await meshJson<Listed>(a, 'ls'),
      (await meshJson<TaskRow[]>(a, 'ps')).map((x) => [x.id, x.serviceVersion, x.desired]),
    ]);
  const before = await seen();
  const cases: Array<[string, string, RegExp]> = [
    ['yaml.yml', 'services:\n  web:\n    image: [oops\n', /yaml\.yml:4:1: .*invalid YAML/],
    [
      'key.yml',
      `services:\n  web:\n    image: ${TEST_IMAGE}\n    imagee: typo\n`,
      /key\.yml:4:5: services\.web\.imagee: unknown key "imagee"/,
    ],
    [
      'type.yml',
      `services:\n  web:\n    image: ${TEST_IMAGE}\n    deploy:\n      replicas: three\n`,
      /type\.yml:5:17: services\.web\.deploy\.replicas: must be a whole number/,
    ],
    [
      'clash.yml',
      `services:\n  a:\n    image: ${TEST_IMAGE}\n    ports: ["9000:80"]\n  b:\n    image: ${TEST_IMAGE}\n    ports: ["9000:81"]\n`,
      /clash\.yml:7:13: services\.b\.ports\.0: port 9000\/tcp is already published by service a/,
    ],
    [
      'taken.yml',
      `services:\n  web:\n    image: ${TEST_IMAGE}\n    ports: ["18080:80"]\n`,
      /port 18080\/tcp is already published by keep\.web/,
    ],
    [
      'constraint.yml',
      `services:\n  web:\n    image: ${TEST_IMAGE}\n    deploy:\n      placement:\n        constraints: [node.labels.zone == mars]\n`,
      /service web: no node satisfies node\.labels\.zone == mars/,
    ],
  ];
  for (const [name, text, expected] of cases) {
    const result = await meshOn(a, 'deploy', '--strict', '-c', cluster.file(name, text), 'bad');
    t.not(result.code, 0, `${name} refused`);
    t.regex(result.stderr, expected, name);
  }
  t.is(await seen(), before, 'stacks, services and tasks are unchanged');
  t.is((await meshOn(a, 'rm', 'keep')).code, 0);
});
