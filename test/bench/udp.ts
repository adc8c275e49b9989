/**
 * UDP through the mesh against a plain UDP echo and socat, side by side in one run: clients send
 * request/answer datagrams (each with a window of datagrams in flight, bounded in time) to one
 * echo process reached directly, through socat (a UDP relay, a process per client), through a
 * service address whose replica is on the same node (`mesh`) and through one whose replica is on
 * another node (`meshRemote`: the agents' mTLS in between). Answers per second, loss (no answer
 * within 500 ms) and round trips, and the mesh's ratios to the direct echo and to socat.
 * Everything stays on 127.0.69.0/24 and the cluster's own service range; socat is a Debian
 * package, installed when missing.
 *
 *   npm run bench:udp [-- --seconds 5] [-- --clients 16] [-- --window 4] [-- --json]
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { LocalCluster } from '../helpers/local-cluster.js';
import {
  cleanupOnSignal,
  ensureTool,
  note,
  option,
  report,
  sideBySide,
  stopGroup,
  until,
} from './harness.js';

const HOSTS: [string, string] = ['127.0.69.1', '127.0.69.2'];
const CLIENT_HOST = '127.0.69.10';
const SOCAT = { host: '127.0.69.3', port: 18_069 };
/** A datagram without its answer after this long counts as lost. */
const LOSS_AFTER_MS = 500;
const PAYLOAD_BYTES = 64;

const ECHO = `
const socket = require('node:dgram').createSocket('udp4');
socket.on('message', (m, from) => socket.send(m, from.port, from.address));
socket.bind(Number(process.env.MESH_PORT_7000), process.env.MESH_HOST);
`;

const echoService = (name: string, side: string) =>
  `  ${name}:\n    command: ${JSON.stringify([process.execPath, '-e', ECHO])}\n    ports: ["7000/udp"]\n    x-mesh: { runtime: process }\n    deploy: { placement: { constraints: [node.labels.side == ${side}] } }\n`;

interface UdpResult {
  answersPerSecond: number;
  sent: number;
  lost: number;
  lossRatio: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * `clients` sockets, each keeping `window` datagrams in flight to host:port for `seconds`: a
 * datagram answered or given up (after LOSS_AFTER_MS) makes room for the next.
 */
async function load(
  host: string,
  port: number,
  seconds: number,
  clients: number,
  window: number,
): Promise<UdpResult> {
  const rtts: number[] = [];
  let sent = 0;
  let lost = 0;
  const endAt = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from(
      { length: clients },
      () =>
        new Promise<void>((resolve, reject) => {
          const socket = createSocket('udp4');
          const inFlight = new Map<number, { at: bigint; timer: NodeJS.Timeout }>();
          let seq = 0;
          const next = () => {
            if (Date.now() >= endAt) {
              if (inFlight.size === 0) socket.close(() => resolve());
              return;
            }
            const id = seq++;
            // A buffer per datagram: send() reads it later, after the next one is written.
            const payload = Buffer.alloc(PAYLOAD_BYTES);
            payload.writeUInt32BE(id, 0);
            const timer = setTimeout(() => {
              inFlight.delete(id);
              lost += 1;
              next();
            }, LOSS_AFTER_MS);
            inFlight.set(id, { at: process.hrtime.bigint(), timer });
            sent += 1;
            socket.send(payload, port, host);
          };
          socket.on('message', (answer) => {
            const id = answer.readUInt32BE(0);
            const flight = inFlight.get(id);
            if (!flight) return; // answered after it was given up
            clearTimeout(flight.timer);
            inFlight.delete(id);
            rtts.push(Number(process.hrtime.bigint() - flight.at) / 1e6);
            next();
          });
          socket.on('error', reject);
          socket.bind(0, CLIENT_HOST, () => {
            for (let i = 0; i < window; i++) next();
          });
        }),
    ),
  );
  rtts.sort((a, b) => a - b);
  const at = (q: number) => Number((rtts[Math.floor(q * (rtts.length - 1))] ?? 0).toFixed(3));
  return {
    answersPerSecond: Math.round(rtts.length / seconds),
    sent,
    lost,
    lossRatio: Number((lost / Math.max(1, sent)).toFixed(5)),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
  };
}

const ratio = (a: UdpResult | undefined, b: UdpResult | undefined) =>
  a && b ? Number((a.answersPerSecond / b.answersPerSecond).toFixed(3)) : null;

async function main(): Promise<void> {
  const seconds = option('seconds', 5);
  const clients = option('clients', 16);
  const window = option('window', 4);
  await ensureTool('socat', 'socat');
  const cluster = await LocalCluster.create('bench-udp');
  let socat: ReturnType<typeof spawn> | undefined;
  const cleanup = cleanupOnSignal(async () => {
    stopGroup(socat);
    await cluster.close();
  });
  try {
    const { address, direct } = await sideBySide(
      cluster,
      HOSTS,
      'udp',
      `${echoService('local', 'local')}${echoService('remote', 'remote')}`,
    );
    const [directHost, directPort] = direct.split(':') as [string, string];
    socat = spawn(
      'socat',
      [`UDP4-LISTEN:${SOCAT.port},bind=${SOCAT.host},fork,reuseaddr`, `UDP4:${direct}`],
      // A group of its own: socat forks a process per client, all stopped with it.
      { stdio: 'ignore', detached: true },
    );
    const targets: Record<string, { host: string; port: number }> = {
      direct: { host: directHost, port: Number(directPort) },
      socat: SOCAT,
      mesh: { host: address('bench.local'), port: 7000 },
      meshRemote: { host: address('bench.remote'), port: 7000 },
    };
    for (const [name, { host, port }] of Object.entries(targets))
      await until(`${name} (${host}:${port}) answering`, 20_000, async () =>
        (await load(host, port, 0.2, 1, 1)).answersPerSecond > 0 ? true : undefined,
      );
    // Two rounds over every target in turn, the better of each kept (see bench:proxy).
    const results: Record<string, UdpResult> = {};
    for (let round = 1; round <= 2; round++)
      for (const [name, { host, port }] of Object.entries(targets)) {
        note(`round ${round}: ${clients} clients x ${window} in flight for ${seconds}s (${name})`);
        const result = await load(host, port, seconds, clients, window);
        if (result.answersPerSecond > (results[name]?.answersPerSecond ?? 0))
          results[name] = result;
      }
    report({
      ...results,
      ratioVsDirect: ratio(results.mesh, results.direct),
      remoteRatioVsDirect: ratio(results.meshRemote, results.direct),
      ratioVsSocat: ratio(results.mesh, results.socat),
      remoteRatioVsSocat: ratio(results.meshRemote, results.socat),
      seconds,
      clients,
      window,
      payloadBytes: PAYLOAD_BYTES,
    });
  } finally {
    await cleanup();
  }
}

await main();
