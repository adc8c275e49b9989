/**
 * TCP routing through the mesh against HAProxy, side by side in one run: wrk (-t1 -c32, bounded
 * in time) against one HTTP backend reached directly, through HAProxy in TCP mode (one thread),
 * through a service address whose endpoint is on the same node (`mesh`), and through one whose
 * endpoint is on another node (`meshRemote`: a stream of the agents' tunnel session in between).
 * Then the same four with a new connection for every request (`newConnections`, in connections
 * a second), where a connection across nodes costs a stream, not a handshake. The backends are
 * keep-alive Node HTTP servers run as process tasks; everything stays on 127.0.41.0/24 and the
 * cluster's own service range. wrk and haproxy are Debian packages, installed when missing.
 * Beside each rate, `cpuUsPerRequest`: the CPU time (user + system) HAProxy, or the two agents,
 * spent per request, which the machine's other load moves far less than the rate. `nodeFloor` is
 * the least Node can do on the cross-node path (node-floor.ts: two processes, an HTTP/2 CONNECT
 * stream over TLS per connection, nothing else), so `remoteRatioVsFloor` is the mesh's own part.
 *
 *   npm run bench:l4 [-- --seconds 10] [-- --json]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from '../helpers/local-cluster.js';
import {
  cleanupOnSignal,
  ensureTool,
  note,
  option,
  report,
  sideBySide,
  until,
  withIngressWorkers,
} from './harness.js';
import { startL4Floor } from './node-floor.js';
import { backendService, cpuRatio, ratio, type WrkRun, wrkWithCpu } from './wrk.js';

const HOSTS: [string, string] = ['127.0.41.1', '127.0.41.2'];
const HAPROXY = '127.0.41.3:18041';
/** Node's own floor on the cross-node path (node-floor.ts): the near and the far process. */
const FLOOR = { near: '127.0.41.4:18041', far: '127.0.41.5:18041' };
async function main(): Promise<void> {
  const seconds = option('seconds', 10);
  await ensureTool('wrk', 'wrk');
  await ensureTool('haproxy', 'haproxy');
  const cluster = await LocalCluster.create('bench-l4');
  let haproxy: ReturnType<typeof spawn> | undefined;
  let floor: ChildProcess[] = [];
  const cleanup = cleanupOnSignal(async () => {
    haproxy?.kill();
    for (const side of floor) side.kill();
    await cluster.close();
  });
  try {
    const { first, second, address, direct } = await sideBySide(
      cluster,
      HOSTS,
      'l4',
      `${backendService('local', 'local')}${backendService('remote', 'remote')}`,
    );
    const config = join(cluster.root, 'haproxy.cfg');
    writeFileSync(
      config,
      `global\n  nbthread 1\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 3s\n  timeout client 60s\n  timeout server 60s\nfrontend bench\n  bind ${HAPROXY}\n  default_backend web\nbackend web\n  server b1 ${direct}\n`,
    );
    haproxy = spawn('haproxy', ['-db', '-f', config], { stdio: 'ignore' });
    floor = await startL4Floor(cluster.root, { ...FLOOR, backend: direct });
    const urls = {
      direct: `http://${direct}/`,
      haproxy: `http://${HAPROXY}/`,
      mesh: `http://${address('bench.local')}:8080/`,
      meshRemote: `http://${address('bench.remote')}:8080/`,
      nodeFloor: `http://${FLOOR.near}/`,
    };
    // Whose CPU each target costs: HAProxy's, or both agents' (either may carry a connection).
    const agents = () => [first, second].flatMap((a) => withIngressWorkers(a.child.pid ?? 0));
    const processes: Record<string, (() => number[]) | undefined> = {
      haproxy: () => [haproxy?.pid ?? 0],
      mesh: agents,
      meshRemote: agents,
      nodeFloor: () => floor.map((side) => side.pid ?? 0),
    };
    for (const url of Object.values(urls))
      await until(`${url} answering`, 20_000, () =>
        fetch(url).then(
          (r) => (r.ok ? true : undefined),
          () => undefined,
        ),
      );
    // Two rounds over every target in turn, the better of each kept (see bench:proxy).
    const measure = async (newConnections: boolean) => {
      const results: Record<string, WrkRun> = {};
      for (let round = 1; round <= 2; round++)
        for (const [name, url] of Object.entries(urls)) {
          note(
            `round ${round}: wrk -t1 -c32 -d${seconds}s ${url} (${name}${newConnections ? ', a connection per request' : ''})`,
          );
          const result = await wrkWithCpu(processes[name], url, seconds, undefined, {
            threads: 1,
            connections: 32,
            newConnections,
          });
          if (result.rps > (results[name]?.rps ?? 0)) results[name] = result;
        }
      return {
        ...results,
        ratioVsHaproxy: ratio(results.mesh, results.haproxy),
        remoteRatioVsHaproxy: ratio(results.meshRemote, results.haproxy),
        remoteCpuVsHaproxy: cpuRatio(results.meshRemote, results.haproxy),
        floorRatioVsHaproxy: ratio(results.nodeFloor, results.haproxy),
        remoteRatioVsFloor: ratio(results.meshRemote, results.nodeFloor),
        remoteP99VsLocal:
          Math.round(((results.meshRemote?.p99Ms ?? 0) / (results.mesh?.p99Ms ?? 1)) * 100) / 100,
      };
    };
    const keepAlive = await measure(false);
    report({ ...keepAlive, newConnections: await measure(true), seconds });
  } finally {
    await cleanup();
  }
}

await main();
