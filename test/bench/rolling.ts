/**
 * Rolling updates under traffic: two agents on 127.0.43.1-2 run three replicas (--replicas) of a web page;
 * bounded continuous load (keep-alive clients through node 1's ingress) runs while the service is
 * updated start-first (the default), then, same load, while it is updated stop-first as the
 * reference. `failed` counts non-2xx answers and connection errors; `updateMs`, the longest
 * `mesh deploy` of each order (it returns once the rollout is done: every old task stopped).
 *
 *   npm run bench:rolling -- [--clients 8] [--rounds 1] [--replicas 3] [--json]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { ensureTestImage } from '../../examples/test-image.js';
import { removeLabelled } from '../helpers/containers.js';
import { type LoadResult, startLoad } from '../helpers/load.js';
import { LocalCluster, meshOn } from '../helpers/local-cluster.js';
import { versionedWebStack } from '../helpers/versioned-web.js';
import { cleanupOnSignal, note, option, report, status, until } from './harness.js';

const run = promisify(execFile);
const HOSTS = ['127.0.43.1', '127.0.43.2'];
const CLIENT = '127.0.43.77';
const PORT = 18_043;

const docker = new Docker();
let cluster: LocalCluster | undefined;
let clusterId: string | undefined;
// Ctrl-C too: the client address goes with the cluster and its containers.
const stopAll = cleanupOnSignal(async () => {
  await cluster?.close();
  if (clusterId) await removeLabelled(docker, `mesh.cluster=${clusterId}`);
  await run('ip', ['addr', 'del', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
});

async function main(): Promise<void> {
  const clients = option('clients', 8);
  const rounds = option('rounds', 1);
  const replicas = option('replicas', 3);
  await ensureTestImage(docker);
  await run('ip', ['addr', 'add', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
  const roll = await LocalCluster.create('bench-rolling');
  cluster = roll;
  const agents = await roll.start(
    HOSTS,
    'roll',
    [],
    ['--dns-upstream', 'none', '--dns-port', '0', '--http-port', String(PORT), '--https-port', '0'],
  );
  const [agent] = agents;
  if (!agent) throw new Error('no agent');
  clusterId = (await status(agent)).clusterId;
  let version = 0;
  /** Deploys the next version with this order; under load unless `quiet`. How long it took. */
  const update = async (order: 'start-first' | 'stop-first', quiet = false) => {
    version++;
    const file = roll.file(
      `v${version}.yml`,
      versionedWebStack(`v${version}`, { order, replicas }),
    );
    const load = quiet
      ? undefined
      : startLoad(
          {
            host: HOSTS[0] as string,
            port: PORT,
            hostHeader: 'web.roll.test',
            localAddress: CLIENT,
          },
          { clients, maxRequests: 500_000, maxMs: 180_000 },
        );
    const startedAt = performance.now();
    const deployed = await meshOn(agent, 'deploy', '-c', file, 'roll', '--timeout', '120s');
    const updateMs = Math.round(performance.now() - startedAt);
    const result = await load?.stop();
    if (deployed.code !== 0) throw new Error(`deploy of v${version} failed:\n${deployed.stderr}`);
    return { ...(result as LoadResult), updateMs };
  };
  await until('two nodes alive', 60_000, async () =>
    (await status(agent)).members.alive === 2 ? true : undefined,
  );
  await update('start-first', true);
  type Timed = LoadResult & { updateMs: number };
  const startFirst: Timed[] = [];
  const stopFirst: Timed[] = [];
  for (let round = 1; round <= rounds; round++) {
    note(`round ${round}: update start-first under load`);
    startFirst.push(await update('start-first'));
    note(`round ${round}: update stop-first under load (the reference)`);
    stopFirst.push(await update('stop-first'));
    // Back to start-first without load: the next round's start-first update follows its order.
    await update('start-first', true);
  }
  const total = (results: Timed[], order: string) => {
    const failures = results.flatMap((r) => r.failures).slice(0, 5);
    if (failures.length > 0) note(`${order} failures: ${failures.join(' | ')}`);
    return {
      requests: results.reduce((n, r) => n + r.requests, 0),
      failed: results.reduce((n, r) => n + r.failed, 0),
      p99Ms: Math.max(...results.map((r) => r.p99Ms)),
      updateMs: Math.max(...results.map((r) => r.updateMs)),
    };
  };
  report({
    ...total(startFirst, 'start-first'),
    stopFirst: total(stopFirst, 'stop-first'),
    clients,
    rounds,
    replicas,
  });
}

try {
  await main();
} finally {
  await stopAll();
}
