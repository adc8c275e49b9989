/**
 * The least Node itself can do on the mesh's data paths, run beside the mesh as peers. No
 * routing, no policy, no counters, no other work in these processes: what is left is Node's own
 * cost per byte, request and connection, so the mesh's rate against a floor says how much of its
 * gap to HAProxy or nginx is its own.
 * - L4 across nodes: a client connection becomes a stream of one HTTP/2 session over TLS
 *   (CONNECT) to a second process, which pipes it to the backend.
 * - HTTP: `node:http` servers on N processes (the cluster module), each request passed to the
 *   backend (or spread over several, undici's BalancedPool) over undici keep-alive pools with its
 *   headers as they came.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { join } from 'node:path';
import { splitHostPort } from '../../mesh/transport/address.js';
import { hostCertificate } from '../helpers/host-certificate.js';
import { until } from './harness.js';

/** The far side: each CONNECT stream piped to a connection to the backend. */
const FAR_SCRIPT = `
const http2 = require('node:http2'), net = require('node:net'), fs = require('node:fs');
const [host, port] = process.env.FLOOR_LISTEN.split(':');
const [backendHost, backendPort] = process.env.FLOOR_BACKEND.split(':');
const server = http2.createSecureServer({
  key: fs.readFileSync(process.env.FLOOR_KEY), cert: fs.readFileSync(process.env.FLOOR_CERT),
  settings: { initialWindowSize: 1 << 20 },
});
server.on('stream', (stream) => {
  const upstream = net.connect({ host: backendHost, port: Number(backendPort), noDelay: true });
  upstream.once('connect', () => stream.respond({ ':status': 200 }));
  stream.pipe(upstream); upstream.pipe(stream);
  upstream.on('error', () => stream.close(http2.constants.NGHTTP2_CONNECT_ERROR));
  stream.on('error', () => upstream.destroy());
});
server.listen(Number(port), host);
`;

/** The near side: each client connection becomes a stream of the one session. */
const NEAR_SCRIPT = `
const http2 = require('node:http2'), net = require('node:net');
const [host, port] = process.env.FLOOR_LISTEN.split(':');
const session = http2.connect('https://' + process.env.FLOOR_FAR, {
  rejectUnauthorized: false, settings: { initialWindowSize: 1 << 20 },
});
session.on('error', (error) => { console.error(error.message); process.exit(1); });
net.createServer({ noDelay: true }, (client) => {
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'backend:80' });
  client.pipe(stream); stream.pipe(client);
  client.on('error', () => stream.destroy()); stream.on('error', () => client.destroy());
}).listen(Number(port), host);
`;

/** The HTTP floor: a primary forking `workers` processes that share the listening socket. */
const HTTP_SCRIPT = `
const cluster = require('node:cluster'), http = require('node:http');
const { Pool, BalancedPool } = require(process.env.FLOOR_UNDICI);
const workers = Number(process.env.FLOOR_WORKERS);
if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers)) w.kill(); process.exit(0); });
} else {
  const [host, port] = process.env.FLOOR_LISTEN.split(':');
  const backends = process.env.FLOOR_BACKEND.split(',').map((b) => 'http://' + b);
  const pool = backends.length > 1
    ? new BalancedPool(backends, { pipelining: 1 })
    : new Pool(backends[0], { pipelining: 1 });
  http.createServer((req, res) => {
    pool.dispatch({ path: req.url, method: req.method, headers: req.rawHeaders, body: null }, {
      onConnect() {},
      onHeaders(status, raw, resume, text) {
        res.writeHead(status, text, raw.map((b) => b.toString('latin1')));
        res.on('drain', resume);
        return true;
      },
      onData(chunk) { return res.write(chunk); },
      onComplete() { res.end(); },
      onError(error) { res.destroy(error); },
    });
  }).listen(Number(port), host);
}
`;

/**
 * Starts the HTTP floor on `listen` (host:port) with `workers` processes in front of `backends`
 * (host:port each), its script written under `dir` (the cluster module forks a file); the caller
 * stops it.
 */
export function startHttpFloor(
  dir: string,
  listen: string,
  backends: readonly string[],
  workers: number,
): ChildProcess {
  const script = join(dir, 'http-floor.cjs');
  writeFileSync(script, HTTP_SCRIPT);
  return spawn(process.execPath, [script], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      FLOOR_LISTEN: listen,
      FLOOR_BACKEND: backends.join(','),
      FLOOR_WORKERS: String(workers),
      FLOOR_UNDICI: createRequire(import.meta.url).resolve('undici'),
    },
  });
}

/**
 * Starts the L4 floor: the far process on `far`, then the near one on `near` (host:port each), its
 * certificate under `dir`. Returns both processes (the caller stops them); clients dial `near`.
 */
export async function startL4Floor(
  dir: string,
  addresses: { near: string; far: string; backend: string },
): Promise<ChildProcess[]> {
  const { certFile, keyFile } = await hostCertificate(dir, 'floor.bench');
  const start = (script: string, env: Record<string, string>) =>
    spawn(process.execPath, ['-e', script], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, ...env },
    });
  const far = start(FAR_SCRIPT, {
    FLOOR_LISTEN: addresses.far,
    FLOOR_BACKEND: addresses.backend,
    FLOOR_KEY: keyFile,
    FLOOR_CERT: certFile,
  });
  // The near side's one session is made at its start: the far side listens first.
  const { host, port } = splitHostPort(addresses.far);
  await until("the floor's far side listening", 10_000, () => accepts(host, port));
  const near = start(NEAR_SCRIPT, { FLOOR_LISTEN: addresses.near, FLOOR_FAR: addresses.far });
  return [far, near];
}

/** Whether host:port takes a TCP connection now (closed at once). */
function accepts(host: string, port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(undefined));
  });
}
