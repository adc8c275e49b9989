/**
 * Overload: more clients than the replicas can serve at once. wrk holds 1,000 keep-alive
 * connections (-t2 -c1000, bounded in time) against two busybox `httpd` replicas (a real Docker
 * Engine), through nginx in front of the same two containers, through the mesh
 * ingress of the node that runs them (127.0.93.1) and through the ingress of a node that runs
 * none (127.0.93.2, every request crossing to the first over the agents' mTLS). The peer's and
 * each ingress's requests per second, errors (non-2xx answers and socket errors) and p99, side by
 * side in one run. `nodeFloor` is the least Node does as a proxy on as many processes in front of
 * the same two containers (node-floor.ts): `floorVsNginx` says how much of the gap is Node's own. busybox `httpd` forks a process per connection and closes it after one answer:
 * the replicas are the bottleneck, so what is measured is how each proxy waits for them.
 *
 * Each proxy gets `--cores` cores (1 unless told, as in #32's run): nginx's worker_processes and
 * each agent's ingress workers. The replicas share the machine's cores with the proxy in front of
 * them, so a proxy given more processes than its peer is not measured beside it on equal terms.
 * The agents allow one client address 4,096 connections (`--http-limit client-connections`): wrk's
 * one address stands for a thousand clients.
 *
 *   npm run bench:overload [-- --seconds 15] [-- --connections 1000] [-- --cores 1]
 *     [-- --http-limit KEY=VALUE] [-- --json]   (--http-limit goes to the agents:
 *     replica-requests=64, to try another limit)
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ensureTestImage, TEST_IMAGE } from '../../examples/test-image.js';
import { removeLabelled } from '../helpers/containers.js';
import { LocalCluster, meshOn } from '../helpers/local-cluster.js';
import {
  cleanupOnSignal,
  ensureTool,
  note,
  option,
  report,
  status,
  stopGroup,
  until,
  WEB_COMMAND,
} from './harness.js';
import { nginxConfig } from './nginx.js';
import { startHttpFloor } from './node-floor.js';
import { answers, ratio, type WrkResult, wrk } from './wrk.js';

const HOSTS = ['127.0.93.1', '127.0.93.2'] as const;
const NGINX = '127.0.93.3';
const NODE_FLOOR = '127.0.93.4';
const PORT = 18_093;
const HOST = 'web.bench.mesh';
/** The goals of #32: no errors anywhere, and beside nginx on the same replicas. */
const GOALS = { errors: 0, rpsVsNginx: 0.8, p99VsNginx: 2 };

const docker = new Docker();
let cluster: LocalCluster | undefined;
let clusterId: string | undefined;
let nginx: ReturnType<typeof spawn> | undefined;
let nodeFloor: ReturnType<typeof spawn> | undefined;
const stopAll = cleanupOnSignal(async () => {
  stopGroup(nginx);
  nodeFloor?.kill('SIGTERM');
  await cluster?.close();
  if (clusterId) await removeLabelled(docker, `mesh.cluster=${clusterId}`);
});

const stack = `services:
  web:
    image: ${TEST_IMAGE}
    command: ${JSON.stringify(WEB_COMMAND)}
    ports: ["8080"]
    stop_grace_period: 1s
    deploy:
      replicas: 2
      placement: { constraints: [node.labels.side == replicas] }
`;

async function main(): Promise<void> {
  const seconds = option('seconds', 15);
  const connections = option('connections', 1000);
  const cores = option('cores', 1);
  await ensureTool('wrk', 'wrk');
  await ensureTool('nginx', 'nginx');
  await ensureTestImage(docker);
  cluster = await LocalCluster.create('bench-overload');
  const nodeFlags = [
    '--dns-upstream',
    'none',
    '--http-port',
    String(PORT),
    '--https-port',
    '0',
    '--http-limit',
    'client-connections=4096',
    '--ingress-workers',
    String(cores),
    ...process.argv
      .slice(2)
      .flatMap((a, i, all) => (a === '--http-limit' ? [a, all[i + 1] as string] : [])),
  ];
  const [first] = await cluster.start([HOSTS[0]], 'o', ['--label', 'side=replicas'], nodeFlags);
  if (!first) throw new Error('no agent');
  clusterId = (await status(first)).clusterId;
  const token = (await meshOn(first, 'token')).stdout.trim();
  cluster.spawn('o2', ['join', token, '--advertise', HOSTS[1], ...nodeFlags]);
  await until('2 members alive', 60_000, async () =>
    (await status(first)).members.alive === 2 ? true : undefined,
  );
  const file = cluster.file('bench.yml', stack);
  const deployed = await meshOn(first, 'deploy', '-c', file, 'bench', '--timeout', '60s');
  if (deployed.code !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);
  // nginx reaches the same containers at their addresses on the stack's bridge.
  const replicas = await until('both replicas running', 30_000, async () => {
    const found = await docker.listContainers({
      filters: { label: [`mesh.cluster=${clusterId}`, 'mesh.stack=bench', 'mesh.service=web'] },
    });
    const addresses = found.flatMap((c) =>
      Object.values(c.NetworkSettings.Networks).map((n) => `${n.IPAddress}:8080`),
    );
    return addresses.length === 2 ? addresses : undefined;
  });

  writeFileSync(
    join(cluster.root, 'nginx.conf'),
    nginxConfig(cluster.root, `${NGINX}:${PORT}`, replicas, '', cores),
  );
  nginx = spawn('nginx', ['-c', join(cluster.root, 'nginx.conf'), '-p', cluster.root], {
    stdio: 'ignore',
    detached: true,
  });
  nodeFloor = startHttpFloor(cluster.root, `${NODE_FLOOR}:${PORT}`, replicas, cores);
  const targets: Record<string, { url: string; host?: string }> = {
    nginx: { url: `http://${NGINX}:${PORT}/` },
    nodeFloor: { url: `http://${NODE_FLOOR}:${PORT}/` },
    meshWithReplicas: { url: `http://${HOSTS[0]}:${PORT}/`, host: HOST },
    meshWithoutReplicas: { url: `http://${HOSTS[1]}:${PORT}/`, host: HOST },
  };
  for (const [name, { url, host }] of Object.entries(targets))
    await until(`${name} answering`, 30_000, () => answers(url, host));
  const results: Record<string, WrkResult> = {};
  for (const [name, { url, host }] of Object.entries(targets)) {
    note(`wrk -t2 -c${connections} -d${seconds}s --timeout 30s ${url} (${name})`);
    results[name] = await wrk(url, seconds, host, { threads: 2, connections, timeoutS: 30 });
  }
  const { nginx: peer, nodeFloor: floor, meshWithReplicas, meshWithoutReplicas } = results;
  const p99Ratio = (a?: WrkResult) =>
    Math.round(((a?.p99Ms ?? 0) / (peer?.p99Ms ?? 1)) * 100) / 100;
  report({
    ...results,
    rpsVsNginx: {
      withReplicas: ratio(meshWithReplicas, peer),
      withoutReplicas: ratio(meshWithoutReplicas, peer),
      nodeFloor: ratio(floor, peer),
    },
    withReplicasVsFloor: ratio(meshWithReplicas, floor),
    p99VsNginx: {
      withReplicas: p99Ratio(meshWithReplicas),
      withoutReplicas: p99Ratio(meshWithoutReplicas),
    },
    goals: GOALS,
    connections,
    seconds,
    cores,
  });
}

try {
  await main();
} finally {
  await stopAll();
}
