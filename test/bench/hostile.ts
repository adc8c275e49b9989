/**
 * The public ports against hostile clients, with nginx (one worker) in front of the same backend
 * in the same run: pipelined requests whose client goes, slow uploads, slow readers, and (mesh
 * only) DNS over TCP sent without reading. Each attack is bounded in count and time; meanwhile a
 * legitimate client asks every 100 ms. Reported per target: the legitimate client's success
 * rate, and the open files and memory of the process that serves (the agent; nginx's processes)
 * before, at the peak and after. Everything stays on 127.0.63.0/24.
 *
 *   npm run bench:hostile [-- --quick] [-- --json]
 *
 * --quick: timeouts of 5 s on both sides (else nginx's and mesh's defaults, 60 s) and smaller
 * attacks, for a run of a couple of minutes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { TaskRow } from '../../agent/control/api.js';
import { callAgent } from '../../cli/control-client.js';
import { encodeName } from '../../proxy/dns/wire.js';
import { firstPortOf, LocalCluster, meshOn } from '../helpers/local-cluster.js';
import { ensureTool, note, report, until } from './harness.js';
import { nginxConfig } from './nginx.js';

const MESH = '127.0.63.1';
const NGINX = '127.0.63.2';
const ATTACKER = '127.0.63.10';
const PORT = 18_063;
const DNS_PORT = 15_363;
const HOST = 'web.hostile.mesh';
const quick = process.argv.includes('--quick');
const TIMEOUT_S = quick ? 5 : 60;
const SCALE = quick ? 0.25 : 1;

const BACKEND = `const page = Buffer.alloc(1024 * 1024, 'x');
require('node:http').createServer((q, s) => q.url === '/big' ? s.end(page) : (q.resume(), q.on('end', () => s.end('ok\\n')))).listen(Number(process.env.PORT), process.env.MESH_HOST)`;

const stack = `services:
  web:
    command: ${JSON.stringify([process.execPath, '-e', BACKEND])}
    ports: ["8080"]
    x-mesh: { runtime: process }
`;

/** What the serving processes hold now: open files and resident memory (MiB), summed. */
function usage(pids: number[]): { fds: number; rssMiB: number } {
  let fds = 0;
  let rss = 0;
  for (const pid of pids) {
    try {
      fds += readdirSync(`/proc/${pid}/fd`).length;
      const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      rss += Number(kb ?? 0) / 1024;
    } catch {
      // A process that exited holds nothing: counted as zero, and the crash shows in the success rate.
    }
  }
  return { fds, rssMiB: Math.round(rss) };
}

function nginxPids(root: string): number[] {
  const master = Number(readFileSync(join(root, 'nginx', 'nginx.pid'), 'utf8'));
  const children = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  return [master, ...children];
}

/** One GET with a deadline: whether it answered 200. */
function legitimate(host: string, headers: Record<string, string>): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host, port: PORT, path: '/', headers, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

interface Target {
  name: string;
  address: string;
  headers: Record<string, string>;
  pids: () => number[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function open(address: string, port = PORT): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port, localAddress: ATTACKER });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Runs an attack while a legitimate client asks and the target is sampled; then lets it settle. */
async function measure(target: Target, attack: () => Promise<void>, settleMs: number) {
  const before = usage(target.pids());
  let peak = before;
  let asked = 0;
  let answered = 0;
  let running = true;
  const probing = (async () => {
    while (running) {
      asked += 1;
      if (await legitimate(target.address, target.headers)) answered += 1;
      await sleep(100);
    }
  })();
  const sampling = (async () => {
    while (running) {
      const now = usage(target.pids());
      peak = { fds: Math.max(peak.fds, now.fds), rssMiB: Math.max(peak.rssMiB, now.rssMiB) };
      await sleep(200);
    }
  })();
  await attack();
  await sleep(settleMs);
  running = false;
  await Promise.all([probing, sampling]);
  return { before, peak, after: usage(target.pids()), legitimate: { asked, answered } };
}

const request = (target: Target, method: string, path: string, extra = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: ${target.headers.host ?? target.address}\r\n${extra}\r\n`;

/** Pipelined GETs for a large page; each client reads a little, then goes. */
async function pipelining(target: Target): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const clients = await Promise.all(
      Array.from({ length: Math.round(20 * SCALE) || 1 }, () => open(target.address)),
    );
    for (const client of clients) {
      client.on('error', () => client.destroy());
      client.write(request(target, 'GET', '/big').repeat(200));
    }
    await Promise.all(
      clients.map((c) => new Promise((resolve) => c.once('data', resolve).once('close', resolve))),
    );
    for (const client of clients) client.destroy();
    await sleep(500);
  }
}

/** Uploads that announce a large body and send it a byte a second. */
async function slowBodies(target: Target): Promise<void> {
  const clients: Socket[] = [];
  for (let n = 0; n < Math.round(1000 * SCALE); n++) {
    const client = await open(target.address).catch(() => undefined);
    if (!client) continue;
    client.on('error', () => client.destroy());
    client.write(request(target, 'POST', '/upload', 'Content-Length: 1000000\r\n'));
    clients.push(client);
  }
  for (let second = 0; second < TIMEOUT_S + 5; second++) {
    for (const client of clients) if (!client.destroyed) client.write('x');
    await sleep(1000);
  }
  for (const client of clients) client.destroy();
}

/** Clients that ask for a large page and never read it. */
async function slowReaders(target: Target): Promise<void> {
  const clients: Socket[] = [];
  for (let n = 0; n < Math.round(1000 * SCALE); n++) {
    const client = await open(target.address).catch(() => undefined);
    if (!client) continue;
    client.pause();
    client.on('error', () => client.destroy());
    client.write(request(target, 'GET', '/big'));
    clients.push(client);
  }
  await sleep((TIMEOUT_S + 5) * 1000);
  for (const client of clients) client.destroy();
}

/** One DNS-over-TCP connection sending a lot of queries without reading an answer. */
async function dnsFlood(): Promise<void> {
  const client = await open(MESH, DNS_PORT);
  client.pause();
  client.on('error', () => client.destroy());
  const message = Buffer.concat([
    Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    encodeName(HOST),
    Buffer.from([0, 1, 0, 1]),
  ]);
  const framed = Buffer.concat([Buffer.from([0, message.length]), message]);
  const batch = Buffer.concat(Array.from({ length: 10_000 }, () => framed));
  const megabytes = Math.round(160 * SCALE);
  for (let sent = 0; sent < megabytes * 1024 * 1024; sent += batch.length) {
    if (!client.write(batch))
      await Promise.race([new Promise((r) => client.once('drain', r)), sleep(2000)]);
    if (client.writableLength > 64 * 1024 * 1024) break; // held back: the client buffers, not us
  }
  await sleep(3000);
  client.destroy();
}

async function main(): Promise<void> {
  await ensureTool('nginx', 'nginx');
  const cluster = await LocalCluster.create('bench-hostile');
  let nginx: ChildProcess | undefined;
  try {
    const [agent] = await cluster.start(
      [MESH],
      'hostile',
      [],
      [
        '--dns-upstream',
        'none',
        '--dns-port',
        String(DNS_PORT),
        '--http-port',
        String(PORT),
        '--https-port',
        '0',
        ...(quick ? ['--http-limit', 'body-timeout=5s', '--http-limit', 'send-timeout=5s'] : []),
      ],
    );
    if (!agent?.child.pid) throw new Error('no agent');
    const file = cluster.file('hostile.yml', stack);
    await until('the backend running', 30_000, async () => {
      const deployed = await meshOn(agent, 'deploy', '-c', file, 'hostile', '--timeout', '20s');
      return deployed.code === 0 ? true : undefined;
    });
    const [task] = (await callAgent(agent.dataDir, 'GET /v1/tasks', {
      service: 'hostile.web',
    })) as TaskRow[];
    const backend = task && firstPortOf(task);
    if (!backend) throw new Error('the backend reports no port');
    writeFileSync(
      join(cluster.root, 'nginx.conf'),
      nginxConfig(
        cluster.root,
        `${NGINX}:${PORT}`,
        backend,
        `client_body_timeout ${TIMEOUT_S}s; client_header_timeout ${TIMEOUT_S}s; send_timeout ${TIMEOUT_S}s;`,
      ),
    );
    nginx = spawn('nginx', ['-c', join(cluster.root, 'nginx.conf'), '-p', cluster.root], {
      stdio: 'ignore',
    });
    const agentPid = agent.child.pid;
    const targets: Target[] = [
      { name: 'mesh', address: MESH, headers: { host: HOST }, pids: () => [agentPid] },
      { name: 'nginx', address: NGINX, headers: {}, pids: () => nginxPids(cluster.root) },
    ];
    for (const target of targets)
      await until(`${target.name} answering`, 20_000, async () =>
        (await legitimate(target.address, target.headers)) ? true : undefined,
      );
    const results: Record<string, Record<string, unknown>> = {};
    const attacks: Array<[string, (t: Target) => Promise<void>]> = [
      ['pipelining', pipelining],
      ['slowBodies', slowBodies],
      ['slowReaders', slowReaders],
    ];
    for (const [name, attack] of attacks)
      for (const target of targets) {
        note(`${name} against ${target.name}`);
        results[name] ??= {};
        (results[name] as Record<string, unknown>)[target.name] = await measure(
          target,
          () => attack(target),
          5000,
        );
      }
    note('DNS over TCP without reading, against mesh');
    results.dnsTcp = { mesh: await measure(targets[0] as Target, dnsFlood, 3000) };
    report({ quick, timeoutSeconds: TIMEOUT_S, ...results });
  } finally {
    nginx?.kill();
    await cluster.close();
  }
}

await main();
