import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { StackRow, StatusResponse, TaskRow } from '../../../agent/control/api.js';
import type { CertificateRecord } from '../../../mesh/api/certificates.js';
import type { Sealed, SecretsKeySetting } from '../../../mesh/api/secrets.js';
import { open } from '../../../mesh/secrets/sealing.js';
import {
  type BackupContents,
  openBackup,
  parseBackup,
  sealBackup,
} from '../../../mesh/state/backup.js';
import { handshakes, hostCertificate } from '../../helpers/host-certificate.js';
import {
  type AgentProcess,
  LocalCluster,
  mesh,
  meshJson,
  meshOn,
  stopAgents,
} from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';

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

const PASSPHRASE = 'correct horse battery staple';
// Agents serve HTTPS on port 443 of their own addresses unless told otherwise.
const HTTPS_PORT = 443;

/** The certificate records a backup file holds, opened. */
function certificatesIn(path: string, secret: { passphrase?: string; votersKey?: Buffer }) {
  const contents = openBackup(parseBackup(readFileSync(path, 'utf8'), path), path, secret);
  return (contents.objects.find(([kind]) => kind === 'certificates')?.[1] ?? []).map(
    (o) => o.value as CertificateRecord,
  );
}

/**
 * The same backup as one written before certificate keys were sealed: each key as given. The
 * data key (sealed with the voters' key, which the passphrase file holds) opens them.
 */
function withPlainKeys(path: string, to: string): void {
  const file = parseBackup(readFileSync(path, 'utf8'), path);
  const contents = openBackup(file, path, { passphrase: PASSPHRASE }) as BackupContents;
  const votersKey = Buffer.from(contents.votersKey as string, 'hex');
  const settings = contents.objects.find(([kind]) => kind === 'settings')?.[1] ?? [];
  const dataKeySetting = settings.find((o) => o.id === 'secrets-key')?.value as SecretsKeySetting;
  const dataKey = open(votersKey, dataKeySetting.sealed);
  for (const [kind, list] of contents.objects)
    if (kind === 'certificates')
      for (const object of list) {
        const { sealedKey, ...rest } = object.value as CertificateRecord;
        object.value = { ...rest, keyPem: open(dataKey, sealedKey as Sealed).toString() };
      }
  const legacy = sealBackup(contents, file, { passphrase: PASSPHRASE });
  writeFileSync(to, JSON.stringify(legacy));
}

async function secretLogged(agent: AgentProcess): Promise<boolean> {
  const logs = await meshOn(agent, 'logs', 'reader');
  return logs.stdout.includes(SECRET_VALUE);
}

test('a backup restores into a new cluster: same stacks, services, secrets and certificates', async (t) => {
  const [voter, worker] = (await cluster.start(HOSTS, 'old')) as [AgentProcess, AgentProcess];
  const created = await meshOn(
    voter,
    'secret',
    'create',
    'token',
    cluster.file('token.txt', SECRET_VALUE),
  );
  t.is(created.code, 0, created.stderr);
  const { certFile, keyFile } = await hostCertificate(cluster.root, 'shop.example');
  const certAdded = await meshOn(voter, 'cert', 'add', 'shop.example', certFile, keyFile);
  t.is(certAdded.code, 0, certAdded.stderr);
  const ca = readFileSync(certFile);
  const deployed = await meshOn(voter, 'deploy', '-c', cluster.file('shop.yml', STACK));
  t.is(deployed.code, 0, deployed.stderr);
  await eventually(() => runningTasks(voter, 'shop'), {
    what: 'the stack running',
    timeoutMs: 30_000,
    intervalMs: 300,
  });
  await eventually(() => secretLogged(voter), { what: 'the secret read', timeoutMs: 10_000 });
  const before = await meshJson<StatusResponse>(voter, 'status');

  const passphrase = cluster.file('passphrase', `${PASSPHRASE}\n`);
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
  const [stored] = certificatesIn(file, { passphrase: PASSPHRASE });
  t.truthy(stored?.sealedKey, 'the certificate key is stored sealed');
  t.is(stored?.keyPem, undefined);
  // What a backup from before keys were sealed holds: the key as given. It is restored below.
  const legacyFile = join(cluster.root, 'legacy.backup');
  withPlainKeys(file, legacyFile);
  t.is(
    certificatesIn(legacyFile, { passphrase: PASSPHRASE })[0]?.keyPem,
    readFileSync(keyFile, 'utf8'),
  );

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
    legacyFile,
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

  // The worker serves HTTPS for the restored certificate (a voter opened its key for it), and
  // the leader sealed the key that the old backup held as given.
  t.true(
    await eventually(() => handshakes(HOSTS[1] as string, HTTPS_PORT, 'shop.example', ca), {
      what: 'the restored certificate served by the worker',
      timeoutMs: 20_000,
      intervalMs: 300,
    }),
  );
  // Again, sealed with the voters' key this time (taken on the worker, sealed by a voter), and
  // restored keeping the CA: the same cluster ID, and the secret still opens.
  const sealedFile = join(cluster.root, 'again.backup');
  const votersKey = Buffer.from(
    readFileSync(join(restored.dataDir, 'pki', 'secrets.key'), 'utf8').trim(),
    'hex',
  );
  const resealed = await eventually(
    async () => {
      const again = await meshOn(second, 'backup', sealedFile);
      if (again.code !== 0) throw new Error(again.stderr);
      const [record] = certificatesIn(sealedFile, { votersKey });
      return record?.sealedKey && record.keyPem === undefined ? record : undefined;
    },
    {
      what: 'the restored certificate key sealed by the leader',
      timeoutMs: 20_000,
      intervalMs: 500,
    },
  );
  t.is(resealed?.host, 'shop.example');
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
