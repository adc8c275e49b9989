/**
 * The HTTP ingress against nginx, HAProxy and Caddy, side by side in one run: wrk (-t1 -c32,
 * bounded in time) against one keep-alive HTTP backend (a process task) reached directly, through
 * each peer (upstream keep-alive), through the mesh ingress with the replica on the same node, and
 * (`meshAcross`) through the ingress of a second node, the request crossing to the replica's node
 * in a stream between the agents (as two of three requests do for a service of three replicas on
 * three nodes).
 * Every proxy gets `--cores` cores (1 unless told): nginx's worker_processes, HAProxy's nbthread,
 * Caddy's GOMAXPROCS and the mesh's --ingress-workers; wrk then runs a thread and 32 connections
 * per core. The peers are Debian packages, installed when missing. Everything stays on
 * 127.0.42.0/24 (the second node 127.0.42.6).
 *
 * Every target is first warmed (untimed: a JIT-compiled proxy, and the Node backend, reach their
 * steady speed only after some requests), then measured in rounds that take the targets in turn;
 * each target's best round is kept, so a moment of noise on a shared machine decides no ratio.
 * Beside each rate, `cpuUsPerRequest`: the CPU time (user + system) the proxy's own processes
 * spent per request (`cpuVsNginx` compares the mesh's with nginx's). `nodeFloor` is the least
 * Node can do as a proxy on as many processes (node-floor.ts), so `ratioVsFloor` is the mesh's
 * own part of its gap to nginx.
 *
 * With --h2 the same is measured in HTTP/2 over TLS (h2load -c32 -m10, ALPN h2) against nginx
 * and Caddy, each with a self-signed certificate for a name of its own, the mesh with one added
 * by `mesh cert add`.
 *
 *   npm run bench:proxy [-- --seconds 10] [-- --rounds 3] [-- --warmup 5] [-- --cores 1] [-- --h2]
 *     [-- --json]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { openSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { TaskRow } from '../../agent/control/api.js';
import { callAgent } from '../../cli/control-client.js';
import { hostCertificate } from '../helpers/host-certificate.js';
import { type AgentProcess, firstPortOf, LocalCluster, meshOn } from '../helpers/local-cluster.js';
import { type H2loadResult, h2load } from './h2load.js';
import {
  cleanupOnSignal,
  ensureTool,
  note,
  option,
  report,
  until,
  withChildren,
  withIngressWorkers,
} from './harness.js';
import { nginxConfig } from './nginx.js';
import { startHttpFloor } from './node-floor.js';
import { answers, backendService, cpuRatio, ratio, type WrkRun, wrk, wrkWithCpu } from './wrk.js';

const MESH = '127.0.42.1';
/** A second node, running no replica: its ingress reaches the backend on the first node. */
const MESH_ACROSS = '127.0.42.6';
const PORT = 18_042;
const TLS_PORT = 18_442;
const PEERS = {
  nginx: '127.0.42.2',
  haproxy: '127.0.42.3',
  caddy: '127.0.42.4',
  nodeFloor: '127.0.42.5',
};
const HOST = 'web.bench.mesh';
/** In --h2, each proxy's name (its certificate's, sent as SNI and :authority) and address. */
const TLS_HOSTS: Record<string, string> = {
  [HOST]: MESH,
  'nginx.bench': PEERS.nginx,
  'caddy.bench': PEERS.caddy,
};

const haproxyConfig = (backend: string, cores: number) => `global
  nbthread ${cores}
  maxconn 4096
defaults
  mode http
  timeout connect 3s
  timeout client 60s
  timeout server 60s
  http-reuse always
  option forwardfor
frontend bench
  bind ${PEERS.haproxy}:${PORT}
  default_backend web
backend web
  server b1 ${backend}
`;

const caddyConfig = (backend: string, tls?: { certFile: string; keyFile: string }) => `{
  admin off
  auto_https off
}
${tls ? `https://caddy.bench:${TLS_PORT}` : `http://${PEERS.caddy}:${PORT}`} {
  bind ${PEERS.caddy}
  ${tls ? `tls ${tls.certFile} ${tls.keyFile}` : ''}
  reverse_proxy ${backend}
}
`;

/** Whether name:TLS_PORT at address answers 200 over TLS (its certificate is not checked). */
function answersTls(address: string, name: string): Promise<true | undefined> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: address,
        port: TLS_PORT,
        servername: name,
        headers: { host: name },
        rejectUnauthorized: false,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200 ? true : undefined);
      },
    );
    req.setTimeout(2000, () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  }).then((ok) => ok as true | undefined);
}

async function main(): Promise<void> {
  const seconds = option('seconds', 10);
  const rounds = option('rounds', 3);
  const warmup = option('warmup', 5);
  const cores = option('cores', 1);
  const h2 = process.argv.includes('--h2');
  await ensureTool(h2 ? 'h2load' : 'wrk', h2 ? 'nghttp2-client' : 'wrk');
  await ensureTool('nginx', 'nginx');
  await ensureTool('haproxy', 'haproxy');
  await ensureTool('caddy', 'caddy');
  const cluster = await LocalCluster.create('bench-proxy');
  const peers: ChildProcess[] = [];
  // On Ctrl-C too: the peers stop before the cluster's release kills whatever names its
  // directory (nginx's master among them, whose workers would then outlive it).
  const cleanup = cleanupOnSignal(async () => {
    await Promise.all(
      peers.map((peer) => {
        const exited = peer.exitCode === null ? once(peer, 'exit') : undefined;
        peer.kill();
        return exited;
      }),
    );
    await cluster.close();
  });
  try {
    const [agent, across] = await cluster.start(
      [MESH, MESH_ACROSS],
      'proxy',
      ['--label', 'side=local'],
      [
        '--dns-upstream',
        'none',
        '--dns-port',
        '0',
        '--http-port',
        String(PORT),
        '--https-port',
        String(TLS_PORT),
        '--ingress-workers',
        String(cores),
      ],
    );
    if (!agent || !across) throw new Error('no agents');
    const file = cluster.file('bench.yml', `services:\n${backendService('web', 'local')}`);
    await until('the node recorded and the backend running', 30_000, async () => {
      const deployed = await meshOn(agent, 'deploy', '-c', file, 'bench', '--timeout', '20s');
      return deployed.code === 0 ? true : undefined;
    });
    // Deploy returns once the task is running; its port is in its next report.
    const backend = await until('the backend reporting its port', 20_000, async () => {
      const listed = (await callAgent(agent.dataDir, 'GET /v1/tasks', {
        service: 'bench.web',
      })) as TaskRow[];
      return listed.map(firstPortOf).find((port) => port !== undefined);
    });

    const root = cluster.root;
    if (h2) {
      await measureH2(agent, root, backend, peers, { seconds, rounds, warmup, cores });
      return;
    }
    writeFileSync(
      join(root, 'nginx.conf'),
      nginxConfig(root, `${PEERS.nginx}:${PORT}`, backend, '', cores),
    );
    writeFileSync(join(root, 'haproxy.cfg'), haproxyConfig(backend, cores));
    writeFileSync(join(root, 'Caddyfile'), caddyConfig(backend));
    const nginx = spawn('nginx', ['-c', join(root, 'nginx.conf'), '-p', root], {
      stdio: 'ignore',
    });
    const haproxy = spawn('haproxy', ['-db', '-f', join(root, 'haproxy.cfg')], { stdio: 'ignore' });
    const caddy = startCaddy(root, cores);
    const nodeFloor = startHttpFloor(root, `${PEERS.nodeFloor}:${PORT}`, [backend], cores);
    peers.push(nginx, haproxy, caddy, nodeFloor);
    // Each proxy's processes, whose CPU time per request is measured beside its rps.
    const targets: Record<string, { url: string; host?: string; processes?: () => number[] }> = {
      direct: { url: `http://${backend}/` },
      nginx: {
        url: `http://${PEERS.nginx}:${PORT}/`,
        processes: () => withChildren(nginx.pid ?? 0, (cmdline) => cmdline.startsWith('nginx')),
      },
      haproxy: { url: `http://${PEERS.haproxy}:${PORT}/`, processes: () => [haproxy.pid ?? 0] },
      caddy: { url: `http://${PEERS.caddy}:${PORT}/`, processes: () => [caddy.pid ?? 0] },
      nodeFloor: {
        url: `http://${PEERS.nodeFloor}:${PORT}/`,
        processes: () => withChildren(nodeFloor.pid ?? 0, () => true),
      },
      mesh: {
        url: `http://${MESH}:${PORT}/`,
        host: HOST,
        processes: () => withIngressWorkers(agent.child.pid ?? 0),
      },
      // The path of a request whose replica is on another node: the ingress worker, its agent's
      // stream to the replica's node, and that agent (all counted in its CPU).
      meshAcross: {
        url: `http://${MESH_ACROSS}:${PORT}/`,
        host: HOST,
        processes: () => [across, agent].flatMap((a) => withIngressWorkers(a.child.pid ?? 0)),
      },
    };
    for (const [name, { url, host }] of Object.entries(targets))
      await until(`${name} answering`, 20_000, () => answers(url, host));
    const load = { threads: cores, connections: 32 * cores };
    for (const [name, { url, host }] of Object.entries(targets)) {
      note(`warming ${name} for ${warmup}s`);
      await wrk(url, warmup, host, load);
    }
    const results: Record<string, WrkRun> = {};
    for (let round = 1; round <= rounds; round++)
      for (const [name, { url, host, processes }] of Object.entries(targets)) {
        note(
          `round ${round}/${rounds}: wrk -t${load.threads} -c${load.connections} -d${seconds}s ${url} (${name})`,
        );
        const result = await wrkWithCpu(processes, url, seconds, host, load);
        if (result.rps > (results[name]?.rps ?? 0)) results[name] = result;
      }
    report({
      ...results,
      ratioVsNginx: ratio(results.mesh, results.nginx),
      cpuVsNginx: cpuRatio(results.mesh, results.nginx),
      floorRatioVsNginx: ratio(results.nodeFloor, results.nginx),
      ratioVsFloor: ratio(results.mesh, results.nodeFloor),
      ratioVsCaddy: ratio(results.mesh, results.caddy),
      acrossRatioVsNginx: ratio(results.meshAcross, results.nginx),
      acrossCpuVsNginx: cpuRatio(results.meshAcross, results.nginx),
      p99VsNginx:
        Math.round(((results.mesh?.p99Ms ?? 0) / (results.nginx?.p99Ms ?? 1)) * 100) / 100,
      cores,
      seconds,
      rounds,
      warmup,
    });
  } finally {
    await cleanup();
  }
}

/** Caddy on `cores` cores (GOMAXPROCS), its files under root. */
function startCaddy(root: string, cores: number): ChildProcess {
  return spawn('caddy', ['run', '--config', join(root, 'Caddyfile'), '--adapter', 'caddyfile'], {
    stdio: ['ignore', 'ignore', openSync(join(root, 'caddy.log'), 'a')],
    env: {
      ...process.env,
      GOMAXPROCS: String(cores),
      HOME: root,
      XDG_DATA_HOME: root,
      XDG_CONFIG_HOME: root,
    },
  });
}

/** The --h2 run: HTTP/2 over TLS to nginx, Caddy and the mesh ingress, in rounds (see main). */
async function measureH2(
  agent: AgentProcess,
  root: string,
  backend: string,
  peers: ChildProcess[],
  {
    seconds,
    rounds,
    warmup,
    cores,
  }: { seconds: number; rounds: number; warmup: number; cores: number },
): Promise<void> {
  const mesh = await hostCertificate(root, HOST);
  const nginx = await hostCertificate(root, 'nginx.bench');
  const caddy = await hostCertificate(root, 'caddy.bench');
  const added = await meshOn(agent, 'cert', 'add', HOST, mesh.certFile, mesh.keyFile);
  if (added.code !== 0) throw new Error(`mesh cert add: ${added.stderr}`);
  writeFileSync(
    join(root, 'nginx.conf'),
    nginxConfig(
      root,
      `${PEERS.nginx}:${TLS_PORT} ssl http2`,
      backend,
      // nginx ends a connection after 1000 requests (h2load does not open another): not here.
      `ssl_certificate ${nginx.certFile}; ssl_certificate_key ${nginx.keyFile}; keepalive_requests 1000000;`,
      cores,
    ),
  );
  writeFileSync(join(root, 'Caddyfile'), caddyConfig(backend, caddy));
  peers.push(
    spawn('nginx', ['-c', join(root, 'nginx.conf'), '-p', root], { stdio: 'ignore' }),
    startCaddy(root, cores),
  );
  const targets = { nginx: 'nginx.bench', caddy: 'caddy.bench', mesh: HOST };
  for (const [name, host] of Object.entries(targets))
    await until(`${name} answering over TLS`, 20_000, () =>
      answersTls(TLS_HOSTS[host] as string, host),
    );
  const url = (host: string) => `https://${host}:${TLS_PORT}/`;
  for (const [name, host] of Object.entries(targets)) {
    note(`warming ${name} for ${warmup}s`);
    await h2load(root, TLS_HOSTS, url(host), warmup, cores);
  }
  const results: Record<string, H2loadResult> = {};
  for (let round = 1; round <= rounds; round++)
    for (const [name, host] of Object.entries(targets)) {
      note(
        `round ${round}/${rounds}: h2load -t${cores} -c${32 * cores} -m10 -D ${seconds} ${url(host)} (${name})`,
      );
      const result = await h2load(root, TLS_HOSTS, url(host), seconds, cores);
      if (result.rps > (results[name]?.rps ?? 0)) results[name] = result;
    }
  const h2Ratio = (a?: H2loadResult, b?: H2loadResult) =>
    Math.round(((a?.rps ?? 0) / (b?.rps ?? 1)) * 1000) / 1000;
  report({
    protocol: 'h2',
    ...results,
    ratioVsNginx: h2Ratio(results.mesh, results.nginx),
    ratioVsCaddy: h2Ratio(results.mesh, results.caddy),
    cores,
    seconds,
    rounds,
    warmup,
  });
}

await main();
