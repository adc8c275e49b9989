/**
 * Deploy speed against the engine itself: the time from `mesh deploy` (the CLI, waiting for the
 * rollout) until every replica runs on three agents (127.0.24.1-3), side by side with the same
 * containers started by plain `docker run -d`, all at once. Rounds alternate; medians reported.
 *
 *   npm run bench:deploy -- [--replicas 12] [--rounds 3] [--json]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { ensureTestImage, TEST_IMAGE } from '../../examples/test-image.js';
import { removeLabelled } from '../helpers/containers.js';
import { LocalCluster, mesh } from '../helpers/local-cluster.js';
import { note, option, report, status, until, WEB_COMMAND, writeWebStack } from './harness.js';

const HOSTS = ['127.0.24.1', '127.0.24.2', '127.0.24.3'];
const BASELINE_LABEL = 'mesh-bench=deploy-baseline';
const run = promisify(execFile);

/** The same containers, by hand: `docker run -d` for each, all started at once. */
async function dockerRun(replicas: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: replicas }, (_, i) =>
      run('docker', [
        'run',
        '-d',
        '--label',
        BASELINE_LABEL,
        '-p',
        `${HOSTS[i % HOSTS.length]}::8080`,
        TEST_IMAGE,
        ...WEB_COMMAND,
      ]),
    ),
  );
  return performance.now() - started;
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

async function main(): Promise<void> {
  const replicas = option('replicas', 12);
  const rounds = option('rounds', 3);
  const docker = new Docker();
  await ensureTestImage(docker);
  const cluster = await LocalCluster.create('bench-deploy');
  const file = writeWebStack(cluster.root, replicas);
  const agents = await cluster.start(HOSTS, 'n');
  const clusterId = (await status(agents[0] as (typeof agents)[number])).clusterId;
  const dataDir = agents[0]?.dataDir ?? '';
  try {
    await until('three voters', 60_000, async () => {
      const views = await Promise.all(agents.map(status));
      return views.every((v) => v.members.alive === 3 && v.raft.voters.length === 3)
        ? true
        : undefined;
    });
    const meshMs: number[] = [];
    const dockerRunMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const started = performance.now();
      const deployed = await mesh('deploy', '-c', file, 'bench', '--data-dir', dataDir);
      if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr}`);
      meshMs.push(performance.now() - started);
      const removed = await mesh('rm', 'bench', '--data-dir', dataDir);
      if (removed.code !== 0) throw new Error(`rm failed: ${removed.stderr}`);
      dockerRunMs.push(await dockerRun(replicas));
      await removeLabelled(docker, BASELINE_LABEL);
      note(
        `round ${round + 1}: mesh ${Math.round(meshMs.at(-1) ?? 0)} ms, docker run ${Math.round(dockerRunMs.at(-1) ?? 0)} ms`,
      );
    }
    const m = median(meshMs);
    const d = median(dockerRunMs);
    report({
      replicas,
      rounds,
      meshMs: Math.round(m),
      dockerRunMs: Math.round(d),
      ratio: Number((m / d).toFixed(3)),
    });
  } finally {
    await cluster.close();
    await removeLabelled(docker, `mesh.cluster=${clusterId}`);
    await removeLabelled(docker, BASELINE_LABEL);
  }
}

await main();
