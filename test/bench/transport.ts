/**
 * Small request/response over one link on loopback: mesh's mTLS transport against plain ws (no TLS)
 * with the same msgpack encoding, measured alternately in one run. The server side of each runs in
 * a child process, so client and server each have a core, as two nodes would.
 *
 *   npm run bench:transport -- [--json] [--requests 20000] [--concurrency 32] [--rounds 3]
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pack, unpack } from 'msgpackr';
import { WebSocket, WebSocketServer } from 'ws';
import { createLogger } from '../../mesh/log.js';
import type { NodeIdentity } from '../../mesh/pki/identity.js';
import { Transport } from '../../mesh/transport/transport.js';
import { testCluster } from '../helpers/cluster.js';

const SERVER_HOST = '127.0.20.1';
const CLIENT_HOST = '127.0.20.2';
const PAYLOAD = { seq: 0, data: 'x'.repeat(64) };

type Kind = 'mesh' | 'plainWs';
type Call = (body: unknown) => Promise<unknown>;

interface Result {
  msgsPerSec: number;
  p99Ms: number;
}

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

/** Keeps `concurrency` requests in flight until `requests` have completed. */
async function measure(call: Call, requests: number, concurrency: number): Promise<Result> {
  const latencies = new Float64Array(requests);
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (next < requests) {
      const index = next++;
      const t0 = process.hrtime.bigint();
      await call({ ...PAYLOAD, seq: index });
      latencies[index] = Number(process.hrtime.bigint() - t0) / 1e6;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort();
  return {
    msgsPerSec: Math.round(requests / seconds),
    p99Ms: Number((latencies[Math.floor(requests * 0.99)] ?? 0).toFixed(3)),
  };
}

// ---- server side (child process) ----

async function serve(kind: Kind, identity: NodeIdentity | undefined): Promise<string> {
  if (kind === 'mesh') {
    const log = createLogger({ nodeId: identity?.nodeId ?? 'server', level: 'warn' });
    const transport = new Transport({
      identity: identity as NodeIdentity,
      host: SERVER_HOST,
      port: 0,
      log,
    });
    transport.handle('echo', (body) => body);
    return transport.listen();
  }
  const wss = new WebSocketServer({ host: SERVER_HOST, port: 0, perMessageDeflate: false });
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(pack(unpack(data as Buffer)))));
  await new Promise((resolve) => wss.once('listening', resolve));
  const { port } = wss.address() as { port: number };
  return `${SERVER_HOST}:${port}`;
}

if (process.argv[2] === '--serve') {
  process.once('message', (message: { kind: Kind; identity?: NodeIdentity }) => {
    serve(message.kind, message.identity).then((address) => process.send?.({ address }));
  });
  process.once('disconnect', () => process.exit(0));
} else {
  await main();
}

// ---- client side ----

async function startServer(
  kind: Kind,
  identity?: NodeIdentity,
): Promise<{ child: ChildProcess; address: string }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { stdio: 'inherit' });
  child.send({ kind, identity });
  const { address } = await new Promise<{ address: string }>((resolve) =>
    child.once('message', resolve),
  );
  return { child, address };
}

async function meshClient(
  address: string,
  identity: NodeIdentity,
): Promise<{ call: Call; close: () => Promise<void> }> {
  const log = createLogger({ nodeId: identity.nodeId, level: 'warn' });
  const transport = new Transport({ identity, host: CLIENT_HOST, port: 0, log });
  return {
    call: (body) => transport.request(address, 'echo', body),
    close: () => transport.close(),
  };
}

async function plainClient(address: string): Promise<{ call: Call; close: () => Promise<void> }> {
  const ws = new WebSocket(`ws://${address}`, {
    perMessageDeflate: false,
    localAddress: CLIENT_HOST,
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const pending = new Map<number, (body: unknown) => void>();
  let nextId = 1;
  ws.on('message', (data) => {
    const [id, body] = unpack(data as Buffer) as [number, unknown];
    pending.get(id)?.(body);
    pending.delete(id);
  });
  return {
    call: (body) =>
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        ws.send(pack([id, body]));
      }),
    close: async () => ws.close(),
  };
}

async function round(
  kind: Kind,
  requests: number,
  concurrency: number,
  ids: NodeIdentity[],
): Promise<Result> {
  const [serverId, clientId] = ids as [NodeIdentity, NodeIdentity];
  const { child, address } = await startServer(kind, kind === 'mesh' ? serverId : undefined);
  const client = kind === 'mesh' ? await meshClient(address, clientId) : await plainClient(address);
  try {
    await measure(client.call, Math.min(10_000, requests), concurrency); // warm-up: JIT on both sides
    return await measure(client.call, requests, concurrency);
  } finally {
    await client.close();
    child.disconnect();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const requests = option('requests', 20_000);
  const concurrency = option('concurrency', 32);
  const rounds = option('rounds', 3);
  const cluster = await testCluster();
  const ids = [await cluster.identity(), await cluster.identity()];
  const results: Record<Kind, Result[]> = { mesh: [], plainWs: [] };
  for (let r = 0; r < rounds; r++) {
    for (const kind of ['mesh', 'plainWs'] as const) {
      const result = await round(kind, requests, concurrency, ids);
      results[kind].push(result);
      if (!json)
        console.error(`round ${r + 1} ${kind}: ${result.msgsPerSec} msg/s, p99 ${result.p99Ms} ms`);
    }
  }
  const summary = (kind: Kind): Result => ({
    msgsPerSec: median(results[kind].map((x) => x.msgsPerSec)),
    p99Ms: median(results[kind].map((x) => x.p99Ms)),
  });
  const mesh = summary('mesh');
  const plainWs = summary('plainWs');
  const report = {
    mesh,
    plainWs,
    ratio: Number((mesh.msgsPerSec / plainWs.msgsPerSec).toFixed(3)),
    requests,
    concurrency,
    rounds,
  };
  console.log(json ? JSON.stringify(report) : JSON.stringify(report, null, 2));
}
