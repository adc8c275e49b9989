/**
 * `mesh service update`: day two without editing the file. One agent on a real engine, loopback
 * block 127.0.70.0/24; images are built or tagged here, and the only registry ever named is a
 * loopback port nobody listens on, so a pull fails at once and nothing leaves the host.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import test from 'ava';
import type { StatusResponse, TaskRow } from '../../agent/control/api.js';
import { buildImage, containerOf, removeLabelled } from '../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../helpers/docker.js';
import { type AgentProcess, LocalCluster, meshJson, meshOn } from '../helpers/local-cluster.js';

const run = promisify(execFile);
const HOST = '127.0.70.1';
const V2 = 'mesh-test/service-update:v2';
/** The test image under a name whose registry is a loopback port nobody listens on. */
const UNPULLABLE = '127.0.70.250:9/mesh-test/service-update:local';
const ABSENT = '127.0.70.250:9/mesh-test/service-update:absent';

const cluster = await LocalCluster.create('service-update');
let agent: AgentProcess;
let clusterId = '';

const stack = (name: string, image = TEST_IMAGE) =>
  cluster.file(
    `${name}.yml`,
    `
services:
  web:
    image: ${image}
    command: sleep 100000
    environment: { GREETING: hello, OLD: "1" }
    stop_grace_period: 1s
    deploy:
      restart_policy: { delay: 100ms, max_attempts: 2 }
      # A 1 s watch (not the default 5 s): these tests are not about the monitor period.
      update_config: { failure_action: rollback, monitor: 1s }
`,
  );

test.before(async () => {
  if ('skip' in engine) return;
  await buildImage(V2, ['LABEL version=2']);
  await run('docker', ['tag', TEST_IMAGE, UNPULLABLE]);
  [agent] = (await cluster.start([HOST], 'su')) as [AgentProcess];
  clusterId = (await meshJson<StatusResponse>(agent, 'status')).clusterId;
});

test.after.always(async () => {
  await cluster.close();
  if ('skip' in engine) return;
  if (clusterId) await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
  await run('docker', ['rmi', '-f', V2, UNPULLABLE]).catch(() => undefined);
});

const running = async (service: string) =>
  (await meshJson<TaskRow[]>(agent, 'ps', service)).filter((t) => t.state === 'running');

dockerTest('--image, --env-add and --env-rm roll out a new version', async (t, docker) => {
  t.is((await meshOn(agent, 'deploy', '-c', stack('img'), 'img')).code, 0);
  const updated = await meshOn(
    agent,
    'service',
    'update',
    'img.web',
    '--image',
    V2,
    '--env-add',
    'GREETING=hi',
    '--env-add',
    'EXTRA=a=b',
    '--env-rm',
    'OLD',
  );
  t.is(updated.code, 0, updated.stderr);
  t.regex(updated.stderr, /mesh: updated img\.web \(version 2\)/);
  const [task] = await running('img.web');
  t.is(task?.serviceVersion, 2);
  const seen = await (await containerOf(docker, clusterId, 'web')).inspect();
  t.is(seen.Config.Image, V2);
  t.true(seen.Config.Env.includes('GREETING=hi'));
  t.true(seen.Config.Env.includes('EXTRA=a=b'), 'a value may hold =');
  t.false(
    seen.Config.Env.some((e) => e.startsWith('OLD=')),
    'removed',
  );
  // mesh inspect shows the spec as it is now.
  const inspected = (await meshOn(agent, 'inspect', 'img.web')).stdout;
  t.regex(inspected, new RegExp(`image: ${V2}; version 2, updated`));
  t.regex(inspected, /env: GREETING=hi EXTRA=a=b$/m);
  t.regex(inspected, /replicas: 1; constraints: -/);
  t.regex(inspected, /update: parallelism 1, delay 0s, start-first, on failure rollback/);
  t.like(
    (await meshJson<{ services: Array<{ spec: { image: string } }> }>(agent, 'inspect', 'img.web'))
      .services[0]?.spec,
    { image: V2 },
  );
  // The same change again changes nothing.
  const again = await meshOn(agent, 'service', 'update', 'img.web', '--image', V2);
  t.regex(again.stderr, /mesh: unchanged img\.web/);
  await meshOn(agent, 'rm', 'img');
});

dockerTest(
  '--force replaces every task with the same spec; the next deploy of the file keeps it',
  async (t) => {
    const file = stack('forced');
    t.is((await meshOn(agent, 'deploy', '-c', file, 'forced')).code, 0);
    const [before] = await running('forced.web');
    const forced = await meshOn(agent, 'service', 'update', 'forced.web', '--force');
    t.is(forced.code, 0, forced.stderr);
    t.regex(forced.stderr, /mesh: updated forced\.web \(version 2\)/);
    const [after] = await running('forced.web');
    t.not(after?.id, before?.id, 'a new task');
    t.is(after?.serviceVersion, 2);
    const redeployed = await meshOn(agent, 'deploy', '-c', file, 'forced');
    t.regex(redeployed.stderr, /mesh: unchanged forced\.web/);
    await meshOn(agent, 'rm', 'forced');
  },
);

dockerTest('--pull never refuses an image the node lacks; the update rolls back', async (t) => {
  t.is((await meshOn(agent, 'deploy', '-c', stack('never'), 'never')).code, 0);
  const updated = await meshOn(
    agent,
    'service',
    'update',
    'never.web',
    '--image',
    ABSENT,
    '--pull',
    'never',
  );
  t.not(updated.code, 0);
  t.regex(updated.stderr, /is not on this node, and pull_policy is never/);
  const [task] = await running('never.web');
  t.is(task?.serviceVersion, 3, 'the rollback is a version of its own');
  await meshOn(agent, 'rm', 'never');
});

dockerTest(
  '--pull always tries the registry before each task, and falls back to the image here',
  async (t) => {
    t.is((await meshOn(agent, 'deploy', '-c', stack('always', UNPULLABLE), 'always')).code, 0);
    const updated = await meshOn(agent, 'service', 'update', 'always.web', '--pull', 'always');
    t.is(updated.code, 0, updated.stderr);
    t.is((await running('always.web'))[0]?.serviceVersion, 2);
    t.regex(
      readFileSync(`${agent.dataDir}.log`, 'utf8'),
      /"image":"127\.0\.70\.250:9\/mesh-test\/service-update:local".*pull_policy always: the pull failed, using the image already on this node/,
    );
    // A deploy of the unchanged file with --pull always replaces the tasks, each pulling again.
    const pulls = () =>
      readFileSync(`${agent.dataDir}.log`, 'utf8').split('pull_policy always: the pull failed')
        .length - 1;
    const before = pulls();
    const file = stack('always', UNPULLABLE);
    const redeployed = await meshOn(agent, 'deploy', '-c', file, 'always', '--pull', 'always');
    t.is(redeployed.code, 0, redeployed.stderr);
    t.regex(redeployed.stderr, /mesh: updated always\.web \(version 3\)/);
    t.is(pulls(), before + 1, 'the new task pulled again');
    await meshOn(agent, 'rm', 'always');
  },
);

test('bad input gets one line naming what is wrong, and changes nothing', async (t) => {
  if ('skip' in engine) return t.pass();
  // The agent's refusals exit 1, a wrong command line 2.
  const cases: Array<[string[], RegExp, number]> = [
    [['img.web'], /nothing to change; give --image/, 2],
    [['nope', '--force'], /no service/, 1],
    [['img.web', '--env-add', 'NOEQUALS'], /--env-add takes NAME=VALUE, got "NOEQUALS"/, 2],
    [['img.web', '--replicas', 'two'], /--replicas takes a whole number, got "two"/, 2],
    [['img.web', '--pull', 'sometimes'], /--pull takes always, missing or never/, 2],
    [['img.web', '--imag', 'x'], /unknown option --imag \(did you mean --image\?\)/, 2],
  ];
  for (const [args, message, exitCode] of cases) {
    const answer = await meshOn(agent, 'service', 'update', ...args);
    t.is(answer.code, exitCode, args.join(' '));
    t.regex(answer.stderr, message, args.join(' '));
  }
  const help = await meshOn(agent, 'service', 'update', '--help');
  t.regex(help.stdout, /--env-add VALUE +NAME=VALUE: set a variable \(repeatable\)/);
  t.regex(help.stdout, /--force +replace every task, even when nothing else changes/);
});

dockerTest(
  'a failed update leaves its task in ps -a with its exit code and logs; history keeps five per slot',
  async (t, docker) => {
    const file = cluster.file(
      'hist.yml',
      `
services:
  job:
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "echo \\"fail=$$FAIL\\"; [ -z \\"$$FAIL\\" ] || exit 3; exec sleep 100000"]
    stop_grace_period: 1s
    deploy:
      restart_policy: { delay: 100ms, max_attempts: 1 }
      # Long enough to see the failing version exit (it does at once), short for six updates.
      update_config: { failure_action: rollback, monitor: 2s }
`,
    );
    t.is((await meshOn(agent, 'deploy', '-c', file, 'hist')).code, 0);
    const [first] = await running('hist.job');
    const failed = await meshOn(agent, 'service', 'update', 'hist.job', '--env-add', 'FAIL=1');
    t.not(failed.code, 0);
    const all = async () => meshJson<TaskRow[]>(agent, 'ps', 'hist', '-a');
    const broken = (await all()).find((task) => task.serviceVersion === 2);
    // Failed for good, or stopped by the rollback while it restarted: either way, how it ended.
    t.like(broken, { exitCode: 3, desired: 'shutdown' });
    t.true(['failed', 'shutdown'].includes(broken?.state as string), broken?.state);
    const table = (await meshOn(agent, 'ps', 'hist', '-a')).stdout;
    t.regex(table, /(failed|shutdown) \(exit 3\)/, 'the table says how it ended');
    const logs = await meshOn(agent, 'logs', '--task', broken?.id as string);
    t.is(logs.code, 0, logs.stderr);
    t.regex(logs.stdout, /\| fail=1$/m, 'its output, read from its stopped container');
    // Five more versions: the slot keeps its last five finished tasks, the oldest goes.
    for (let i = 0; i < 5; i++)
      t.is((await meshOn(agent, 'service', 'update', 'hist.job', '--force')).code, 0);
    const kept = await all();
    t.is(kept.length, 6, 'one running, five finished');
    t.false(
      kept.some((task) => task.id === first?.id),
      'the oldest finished task is gone',
    );
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`mesh.cluster=${clusterId}`, 'mesh.service=job'] },
    });
    t.is(containers.length, 6, 'its container went with it; the others are kept');
    const gone = await meshOn(agent, 'logs', '--task', first?.id as string);
    t.is(gone.code, 1);
    t.regex(gone.stderr, /no task .* is kept with the last 5 of its slot/);
    await meshOn(agent, 'rm', 'hist');
  },
);
