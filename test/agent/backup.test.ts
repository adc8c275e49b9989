import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { StackRow, StatusResponse, TaskRow } from '../../agent/control-api.js';
import {
  type AgentProcess,
  LocalCluster,
  mesh,
  meshJson,
  meshOn,
  stopAgents,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

// Loopback block 127.0.48.0/24: a cluster, backed up, destroyed, and restored on the same hosts.
const HOSTS = ['127.0.48.1', '127.0.48.2'];
const cluster = await LocalCluster.create('backup');
test.after.always(() => cluster.close());

const SECRET_VALUE = 'the-value-only-the-data-key-opens';
const STACK = `name: shop
services:
  reader:
    command: ["sh", "-c", "cat \\"$$MESH_FILE_TOKEN\\"; echo; sleep 100000"]
    secrets: [token]
    x-mesh: { runtime: process }
  web:
    command: ["sleep", "100000"]
    x-mesh: { runtime: process }
    deploy: { replicas: 2 }
secrets:
  token:
    external: true
`;

async function runningTasks(agent: AgentProcess, stack: string): Promise<TaskRow[] | undefined> {
  const tasks = await meshJson<TaskRow[]>(agent, 'ps', stack);
  return tasks.length === 3 && tasks.every((r) => r.state === 'running') ? tasks : undefined;
}

async function secretLogged(agent: AgentProcess): Promise<boolean> {
  const logs = await meshOn(agent, 'logs', 'reader');
  return logs.stdout.includes(SECRET_VALUE);
}

test('a backup restores into a new cluster: same stacks, services and secrets', async (t) => {
  const [voter, worker] = (await cluster.start(HOSTS, 'old')) as [AgentProcess, AgentProcess];
  const created = await meshOn(
    voter,
    'secret',
    'create',
    'token',
    cluster.file('token.txt', SECRET_VALUE),
  );
  t.is(created.code, 0, created.stderr);
  const deployed = await meshOn(voter, 'deploy', '-c', cluster.file('shop.yml', STACK));
  t.is(deployed.code, 0, deployed.stderr);
  await eventually(() => runningTasks(voter, 'shop'), {
    what: 'the stack running',
    timeoutMs: 30_000,
    intervalMs: 300,
  });
  await eventually(() => secretLogged(voter), { what: 'the secret read', timeoutMs: 10_000 });
  const before = await meshJson<StatusResponse>(voter, 'status');

  const passphrase = cluster.file('passphrase', 'correct horse battery staple\n');
  const onWorker = await meshOn(
    worker,
    'backup',
    join(cluster.root, 'w.json'),
    '--passphrase-file',
    passphrase,
  );
  t.not(onWorker.code, 0);
  t.regex(onWorker.stderr, /is a worker: a backup with a passphrase holds the voters' key/);
  const sealedOnWorker = await meshJson<{ encryption: { method: string } }>(
    worker,
    'backup',
    join(cluster.root, 'w.json'),
  );
  t.is(sealedOnWorker.encryption.method, 'voters-key');
  const file = join(cluster.root, 'shop.backup');
  const taken = await meshJson<{ counts: Record<string, number>; encryption: { method: string } }>(
    voter,
    'backup',
    file,
    '--passphrase-file',
    passphrase,
  );
  t.like(taken, {
    counts: { stacks: 1, services: 2, secrets: 1 },
    encryption: { method: 'passphrase' },
  });

  // The cluster is gone: every agent killed, never to run again.
  await stopAgents([voter, worker]);

  // A wrong passphrase is refused before anything is written.
  const wrongDir = join(cluster.root, 'wrong');
  const wrong = await mesh(
    'init',
    '--restore',
    file,
    '--passphrase-file',
    cluster.file('wrong', 'not the passphrase at all\n'),
    '--data-dir',
    wrongDir,
    '--advertise',
    HOSTS[0] as string,
  );
  t.not(wrong.code, 0);
  t.regex(wrong.stderr, /does not open: wrong passphrase, or the file was changed/);
  t.false(existsSync(join(wrongDir, 'cluster.json')));

  const [restored, second] = (await cluster.start(HOSTS, 'new', [
    '--restore',
    file,
    '--passphrase-file',
    passphrase,
  ])) as [AgentProcess, AgentProcess];
  const after = await meshJson<StatusResponse>(restored, 'status');
  t.not(after.clusterId, before.clusterId, 'a new cluster, with a new CA');
  const stacks = await meshJson<StackRow[]>(second, 'ls');
  t.deepEqual(
    stacks.map((s) => s.name),
    ['shop'],
  );
  const secrets = await meshJson<Array<{ name: string }>>(second, 'secret', 'ls');
  t.deepEqual(
    secrets.map((s) => s.name),
    ['token'],
  );
  const tasks = (await eventually(() => runningTasks(second, 'shop'), {
    what: 'the restored stack running',
    timeoutMs: 60_000,
    intervalMs: 300,
  })) as TaskRow[];
  t.deepEqual([...new Set(tasks.map((r) => r.service))].sort(), ['shop.reader', 'shop.web']);
  // The secret opens in the new cluster: its data key came back with the backup.
  t.true(
    await eventually(() => secretLogged(second), {
      what: 'the restored secret read',
      timeoutMs: 20_000,
      intervalMs: 300,
    }),
  );

  // Again, sealed with the voters' key this time (taken on the worker, sealed by a voter), and
  // restored keeping the CA: the same cluster ID, and the secret still opens.
  const sealedFile = join(cluster.root, 'again.backup');
  const again = await meshOn(second, 'backup', sealedFile);
  t.is(again.code, 0, again.stderr);
  await stopAgents([restored, second]);
  const [kept, keptSecond] = (await cluster.start(HOSTS, 'kept', [
    '--restore',
    sealedFile,
    '--voters-key',
    join(restored.dataDir, 'pki', 'secrets.key'),
    '--keep-ca',
  ])) as [AgentProcess, AgentProcess];
  t.is((await meshJson<StatusResponse>(kept, 'status')).clusterId, after.clusterId);
  t.true(
    await eventually(() => secretLogged(keptSecond), {
      what: 'the secret read in the cluster restored with its CA',
      timeoutMs: 30_000,
      intervalMs: 300,
    }),
  );
});
