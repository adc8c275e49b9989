/**
 * The HTTP ingress against nginx, HAProxy and Caddy, side by side in one run: wrk (-t1 -c32,
 * bounded in time) against one keep-alive HTTP backend (a process task) reached directly, through
 * each peer (one worker or thread each, upstream keep-alive) and through the mesh ingress with the
 * replica on the same node. The peers are Debian packages, installed when missing. Everything
 * stays on 127.0.42.0/24.
 *
 * Every target is first warmed (untimed: a JIT-compiled proxy, and the Node backend, reach their
 * steady speed only after some requests), then measured in rounds that take the targets in turn;
 * each target's best round is kept, so a moment of noise on a shared machine decides no ratio.
 *
 *   npm run bench:proxy [-- --seconds 10] [-- --rounds 3] [-- --warmup 5] [-- --json]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskRow } from '../../agent/control/api.js';
import { callAgent } from '../../cli/control-client.js';
import { firstPortOf, LocalCluster, meshOn } from '../helpers/local-cluster.js';
import { ensureTool, note, option, report, until } from './harness.js';
import { nginxConfig } from './nginx.js';
import { answers, backendService, ratio, type WrkResult, wrk } from './wrk.js';

const MESH = '127.0.42.1';
const PORT = 18_042;
const PEERS = { nginx: '127.0.42.2', haproxy: '127.0.42.3', caddy: '127.0.42.4' };
const HOST = 'web.bench.mesh';

const haproxyConfig = (backend: string) => `global
  nbthread 1
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

const caddyConfig = (backend: string) => `{
  admin off
  auto_https off
}
http://${PEERS.caddy}:${PORT} {
  bind ${PEERS.caddy}
  reverse_proxy ${backend}
}
`;

async function main(): Promise<void> {
  const seconds = option('seconds', 10);
  const rounds = option('rounds', 3);
  const warmup = option('warmup', 5);
  await ensureTool('wrk', 'wrk');
  await ensureTool('nginx', 'nginx');
  await ensureTool('haproxy', 'haproxy');
  await ensureTool('caddy', 'caddy');
  const cluster = await LocalCluster.create('bench-proxy');
  const peers: ChildProcess[] = [];
  try {
    const [agent] = await cluster.start(
      [MESH],
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
        '0',
      ],
    );
    if (!agent) throw new Error('no agent');
    const file = cluster.file('bench.yml', `services:\n${backendService('web', 'local')}`);
    await until('the node recorded and the backend running', 30_000, async () => {
      const deployed = await meshOn(agent, 'deploy', '-c', file, 'bench', '--timeout', '20s');
      return deployed.code === 0 ? true : undefined;
    });
    const [task] = (await callAgent(agent.dataDir, 'GET /v1/tasks', {
      service: 'bench.web',
    })) as TaskRow[];
    const backend = task && firstPortOf(task);
    if (!backend) throw new Error('the backend reports no port');

    const root = cluster.root;
    writeFileSync(join(root, 'nginx.conf'), nginxConfig(root, `${PEERS.nginx}:${PORT}`, backend));
    writeFileSync(join(root, 'haproxy.cfg'), haproxyConfig(backend));
    writeFileSync(join(root, 'Caddyfile'), caddyConfig(backend));
    peers.push(
      spawn('nginx', ['-c', join(root, 'nginx.conf'), '-p', root], { stdio: 'ignore' }),
      spawn('haproxy', ['-db', '-f', join(root, 'haproxy.cfg')], { stdio: 'ignore' }),
      spawn('caddy', ['run', '--config', join(root, 'Caddyfile'), '--adapter', 'caddyfile'], {
        stdio: ['ignore', 'ignore', openSync(join(root, 'caddy.log'), 'a')],
        env: {
          ...process.env,
          GOMAXPROCS: '1',
          HOME: root,
          XDG_DATA_HOME: root,
          XDG_CONFIG_HOME: root,
        },
      }),
    );
    const targets: Record<string, { url: string; host?: string }> = {
      direct: { url: `http://${backend}/` },
      nginx: { url: `http://${PEERS.nginx}:${PORT}/` },
      haproxy: { url: `http://${PEERS.haproxy}:${PORT}/` },
      caddy: { url: `http://${PEERS.caddy}:${PORT}/` },
      mesh: { url: `http://${MESH}:${PORT}/`, host: HOST },
    };
    for (const [name, { url, host }] of Object.entries(targets))
      await until(`${name} answering`, 20_000, () => answers(url, host));
    for (const [name, { url, host }] of Object.entries(targets)) {
      note(`warming ${name} for ${warmup}s`);
      await wrk(url, warmup, host);
    }
    const results: Record<string, WrkResult> = {};
    for (let round = 1; round <= rounds; round++)
      for (const [name, { url, host }] of Object.entries(targets)) {
        note(`round ${round}/${rounds}: wrk -t1 -c32 -d${seconds}s ${url} (${name})`);
        const result = await wrk(url, seconds, host);
        if (result.rps > (results[name]?.rps ?? 0)) results[name] = result;
      }
    report({
      ...results,
      ratioVsNginx: ratio(results.mesh, results.nginx),
      ratioVsCaddy: ratio(results.mesh, results.caddy),
      seconds,
      rounds,
      warmup,
    });
  } finally {
    for (const peer of peers) peer.kill();
    await cluster.close();
  }
}

await main();
