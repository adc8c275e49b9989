/**
 * The data plane held over time: three agents (127.0.96.1-3) serve `web` (3 replicas, process
 * tasks) and `ws` (one replica that holds WebSockets, on node 1). For the whole run, through node
 * 1: keep-alive HTTP load through the ingress (wrk, `--connections`, in slices of a minute), new
 * TCP connections at a steady rate through web's service address (the routing mesh), WebSockets
 * held idle from start to end, and DNS queries. Meanwhile: web rolled to a new version (a quarter
 * in), node 3 (whose ingress serves no client) killed with SIGKILL and started again (halfway),
 * and the secret web uses updated (three quarters in: web rolls again).
 *
 * Each slice reports its requests, errors and p99 and each agent's RSS (at its end, and the least
 * through it) and open file descriptors; the end, the WebSockets still open and the descriptors
 * against the start. Held: no failed request, connection or query through node 1 (connections
 * node 3's agent was relaying when it was killed are counted apart), every WebSocket open, RSS
 * growth after the first slice ≤ 10 MB (the least of the run's last slice-length stretch against
 * the second's, sampled every second) and
 * descriptors back within 10 of the start, for the agents not killed.
 *
 * Idle timeouts that apply (and how to set them): a client's idle keep-alive connection to the
 * ingress, 75 s (`--http-limit keepalive-timeout=`); an upgraded connection (WebSocket) and a TCP
 * connection through a service address, none (the application's own pings decide).
 *
 *   npm run bench:soak -- [--minutes 10] [--connections 1000] [--json]
 *   (the test runs --seconds 30 --slice-seconds 10 --connections 50)
 */
import { Resolver } from 'node:dns/promises';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import type { StackRow } from '../../agent/control/api.js';
import { callAgent } from '../../cli/control-client.js';
import { pollUntil } from '../../mesh/poll.js';
import {
  type AgentProcess,
  checkUnreachable,
  deployStack,
  LocalCluster,
  meshOn,
  testRanges,
  waitForControl,
} from '../helpers/local-cluster.js';
import {
  cleanupOnSignal,
  ensureTool,
  memoryMb,
  note,
  option,
  report,
  status,
  until,
  withIngressWorkers,
} from './harness.js';
import { type WrkResult, wrk } from './wrk.js';

const HOSTS = ['127.0.96.1', '127.0.96.2', '127.0.96.3'];
const HTTP_PORT = 18_096;
const WEB_HOST = 'web.soak.mesh';
const WS_HOST = 'ws.soak.mesh';
const GOALS = { failed: 0, websocketsOpen: 50, rssGrowthMb: 10, fdDrift: 10 };
/** The agents that run throughout (node 3's process is replaced halfway), by index. */
const THROUGHOUT = [0, 1];

/**
 * A replica: answers `ok <version>` to any request, and completes a WebSocket handshake by hand
 * (then holds the connection, answering nothing): no dependency in the task.
 */
const REPLICA = `
const { createHash } = require('node:crypto');
const server = require('node:http').createServer((q, s) => s.end('ok ' + process.env.VERSION + '\\n'));
server.on('upgrade', (req, socket) => {
  const accept = createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n');
  socket.on('error', () => socket.destroy());
});
server.listen(Number(process.env.PORT), process.env.MESH_HOST);
`;

const stack = (version: number) => `services:
  web:
    command: ${JSON.stringify([process.execPath, '-e', REPLICA])}
    environment: { VERSION: "${version}" }
    ports: ["8080"]
    secrets: [token]
    stop_grace_period: 2s
    x-mesh: { runtime: process }
    deploy:
      replicas: 3
      update_config: { order: start-first, parallelism: 1 }
  ws:
    command: ${JSON.stringify([process.execPath, '-e', REPLICA])}
    environment: { VERSION: "1" }
    ports: ["8081"]
    x-mesh: { runtime: process }
    deploy: { placement: { constraints: [node.labels.soak == clients] } }
secrets:
  token:
    file: ./token.txt
`;

/**
 * Open descriptors of an agent and its ingress workers; null while it is not there (killed, not
 * started again yet).
 */
function fds(pid: number): number | null {
  try {
    return withIngressWorkers(pid).reduce((n, p) => n + readdirSync(`/proc/${p}/fd`).length, 0);
  } catch {
    return null; // gone: nothing to count
  }
}

/** Resident memory (MB) of an agent and its ingress workers; null while it is not there. */
function rss(pid: number): number | null {
  try {
    return Math.round(memoryMb(pid).rss * 10) / 10;
  } catch {
    return null; // gone: nothing to measure
  }
}

/**
 * The least resident memory of each agent (with its workers) through a slice, and through any
 * stretch of the run, sampled every second: the memory it keeps. One sample lands anywhere in a
 * worker's garbage-collection cycle (under this load its V8 heap swings by several MB from one
 * collection to the next); a leak raises the floor.
 */
function rssFloors(pids: () => number[]) {
  let floors: number[] = [];
  const samples: Array<{ atMs: number; rss: Array<number | null> }> = [];
  const sample = () => {
    const now = pids().map(rss);
    samples.push({ atMs: Date.now(), rss: now });
    now.forEach((mb, i) => {
      if (mb !== null) floors[i] = Math.min(floors[i] ?? mb, mb);
    });
  };
  const timer = setInterval(sample, 1000);
  return {
    /** The floors since the last take. */
    take: (): Array<number | null> => {
      sample();
      const taken = pids().map((_, i) => floors[i] ?? null);
      floors = [];
      return taken;
    },
    /** Each agent's least sample taken from `fromMs` (inclusive) to `toMs`; null for none. */
    between: (fromMs: number, toMs: number): Array<number | null> =>
      pids().map((_, i) => {
        const within = samples
          .filter((s) => s.atMs >= fromMs && s.atMs <= toMs)
          .map((s) => s.rss[i])
          .filter((mb): mb is number => typeof mb === 'number');
        return within.length > 0 ? Math.min(...within) : null;
      }),
    stop: () => clearInterval(timer),
  };
}

/** What one slice of the run saw. */
interface Slice {
  endSeconds: number;
  http: WrkResult;
  routingMesh: Counted;
  dns: Counted;
  /** Per agent at the slice's end, null while it is down. */
  rssMb: Array<number | null>;
  /** Per agent, the least of its samples through the slice (see rssFloors). */
  rssFloorMb: Array<number | null>;
  fds: Array<number | null>;
}

/** Tries counted in a slice; why the failed ones failed (with the second of the run), if any. */
interface Counted {
  count: number;
  /** Failed, not counting those cut by the kill. */
  failed: number;
  /** Failed while under way through the agent killed (see `cutByKill`). */
  cutByKill: number;
  failures?: Array<{ atSeconds: number; reason: string; cutByKill: boolean }>;
}

/** Failures kept per slice with their reasons: enough to tell causes apart in CI's output. */
const FAILURES_KEPT = 10;

/**
 * Something done at a steady rate (one at a time or overlapping) until stopped, each counted;
 * `once` resolves to why it failed, or to nothing when it did not. `cutByKill` tells a failure
 * under way when an agent was killed, from its start and end (ms), from one that counts.
 */
function steady(
  perSecond: number,
  once: () => Promise<string | undefined>,
  clock: { elapsed: () => number; cutByKill: (startedMs: number, endedMs: number) => boolean },
) {
  let counted: Counted = { count: 0, failed: 0, cutByKill: 0 };
  let running = true;
  const loop = (async () => {
    const inFlight = new Set<Promise<void>>();
    while (running) {
      const atSeconds = clock.elapsed();
      const startedMs = Date.now();
      const done = once().then((reason) => {
        counted.count += 1;
        if (reason === undefined) return;
        const cutByKill = clock.cutByKill(startedMs, Date.now());
        if (cutByKill) counted.cutByKill += 1;
        else counted.failed += 1;
        counted.failures ??= [];
        if (counted.failures.length < FAILURES_KEPT)
          counted.failures.push({ atSeconds, reason, cutByKill });
      });
      inFlight.add(done);
      void done.then(() => inFlight.delete(done));
      await sleep(1000 / perSecond);
    }
    await Promise.all(inFlight);
  })();
  return {
    /** What was counted since the last take. */
    take: () => {
      const taken = counted;
      counted = { count: 0, failed: 0, cutByKill: 0 };
      return taken;
    },
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** A new TCP connection to the address, one request: why no 200 answered it, if none did. */
function connectOnce(address: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port: 8080 });
    let answer = '';
    let connected = false;
    let failure: string | undefined;
    const timer = setTimeout(() => socket.destroy(new Error('no answer within 10 s')), 10_000);
    socket.on('connect', () => {
      connected = true;
      socket.end('GET / HTTP/1.0\r\n\r\n');
    });
    socket.on('data', (chunk) => {
      answer += String(chunk);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (answer.startsWith('HTTP/1.1 200')) resolve(undefined);
      else if (failure) resolve(failure);
      else if (answer) resolve(`answered ${JSON.stringify(answer.split('\r\n')[0])}`);
      else resolve(connected ? 'closed with no answer' : 'closed before connecting');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      failure = `${connected ? 'after connecting' : 'connecting'}: ${error.code ?? error.message}`;
    });
  });
}

/** One DNS question for web's name to the server: why it gave no address, if it did not. */
function askOnce(resolver: Resolver): Promise<string | undefined> {
  return resolver.resolve4(WEB_HOST).then(
    (addresses) => (addresses.length > 0 ? undefined : 'no address'),
    (error: NodeJS.ErrnoException) => error.code ?? error.message, // no answer in time, or refused
  );
}

/** Opens a WebSocket to the ws service through node 1's ingress. */
function openWebSocket(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://${HOSTS[0]}:${HTTP_PORT}/`, { headers: { host: WS_HOST } });
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

let cluster: LocalCluster | undefined;
const stopAll = cleanupOnSignal(async () => {
  await cluster?.close();
});

async function main(): Promise<void> {
  const seconds = option('seconds', option('minutes', 10) * 60);
  const sliceSeconds = option('slice-seconds', 60);
  const connections = option('connections', 1000);
  await ensureTool('wrk', 'wrk');
  cluster = await LocalCluster.create('bench-soak');
  const nodeFlags = [
    '--http-port',
    String(HTTP_PORT),
    '--https-port',
    '0',
    '--dns-upstream',
    'none',
    '--http-limit',
    'client-connections=4096',
  ];
  const agents = await cluster.start(HOSTS, 's', ['--label', 'soak=clients'], nodeFlags);
  const [first] = agents;
  if (!first) throw new Error('no agent');
  await until('3 members alive', 60_000, async () =>
    (await status(first)).members.alive === 3 ? true : undefined,
  );
  cluster.file('token.txt', 'first');
  await deployStack(cluster, first, 'soak', stack(1));
  await checkUnreachable(testRanges(HOSTS[0] as string).serviceRange);
  const [row] = (await callAgent(first.dataDir, 'GET /v1/stacks', {})) as StackRow[];
  const web = row?.services.find((s) => s.id === 'soak.web');
  const address = web && 'address' in web ? web.address : undefined;
  if (!address) throw new Error('web has no service address');

  // The ingress workers start with the first route: for a moment after the deploy a connection to
  // the ingress may be refused (CI met it once). The first WebSocket waits for it to listen.
  const firstSocket = await until('the ingress taking a WebSocket', 30_000, openWebSocket);
  const websockets = [
    firstSocket,
    ...(await Promise.all(Array.from({ length: 49 }, openWebSocket))),
  ];
  const closed = { count: 0 };
  for (const socket of websockets) socket.once('close', () => (closed.count += 1));
  const pids = () => agents.map((a) => a.child.pid as number);
  const startFds = pids().map(fds);
  const startedAt = Date.now();
  const elapsed = () => Math.round((Date.now() - startedAt) / 1000);
  // A connection through web's service address that node 3's agent relayed to its replica dies
  // with that agent when it is killed, as it would with any proxy killed (the relay's socket state
  // is gone, and sending the client's bytes again to another replica is not safe for TCP): one
  // under way at the kill that failed within a second of it is counted apart. One begun after the
  // kill must be served by another replica.
  let killedAt: number | undefined;
  const cutByKill = (startedMs: number, endedMs: number) =>
    killedAt !== undefined && startedMs <= killedAt && endedMs <= killedAt + 1000;
  const mesh = steady(20, () => connectOnce(address), { elapsed, cutByKill });
  // A query fails as it would for an application on glibc's defaults (resolv.conf: timeout 5 s,
  // attempts 2): CI, running the whole suite at once, once left one of 2 s and a single try
  // unanswered during the roll (the 10-minute runs here: none of 11.7k).
  const resolver = new Resolver({ timeout: 5000, tries: 2 });
  resolver.setServers([HOSTS[0] as string]);
  // DNS is node 1's own: no query goes through node 3.
  const dns = steady(20, () => askOnce(resolver), { elapsed, cutByKill: () => false });
  const memoryFloors = rssFloors(pids);

  const slices: Slice[] = [];
  const events: Array<{ atSeconds: number; what: string }> = [];
  const at = (fraction: number) => startedAt + fraction * seconds * 1000;
  const happenings = [
    {
      when: at(0.25),
      what: 'web rolled to version 2',
      run: () => deployStack(cluster as LocalCluster, first, 'soak', stack(2)),
    },
    {
      when: at(0.5),
      what: 'node 3 killed with SIGKILL, then started again',
      run: async () => {
        const third = agents[2] as AgentProcess;
        killedAt = Date.now();
        third.child.kill('SIGKILL');
        await third.exited;
        await sleep(5000);
        agents[2] = (cluster as LocalCluster).spawn('s3', ['agent']);
        await waitForControl(agents[2] as AgentProcess);
      },
    },
    {
      when: at(0.75),
      what: 'the secret web uses updated (web rolls)',
      run: async () => {
        const file = (cluster as LocalCluster).file('token.next', 'second');
        const updated = await meshOn(first, 'secret', 'update', 'soak_token', file);
        if (updated.code !== 0) throw new Error(`secret update failed: ${updated.stderr}`);
      },
    },
  ];
  const background: Promise<void>[] = [];
  const startHappenings = () => {
    while (happenings[0] && Date.now() >= happenings[0].when) {
      const next = happenings.shift() as (typeof happenings)[number];
      events.push({ atSeconds: elapsed(), what: next.what });
      note(`${elapsed()} s: ${next.what}`);
      background.push(next.run());
    }
  };
  // Happenings start between slices and while one runs: a slice is cut at each of them.
  while (Date.now() - startedAt < seconds * 1000) {
    startHappenings();
    const left = seconds - (Date.now() - startedAt) / 1000;
    // wrk's whole seconds may leave a fraction: not worth a slice of its own.
    if (left < 1) break;
    const nextAt = happenings[0] ? (happenings[0].when - Date.now()) / 1000 : left;
    const slice = Math.max(1, Math.min(sliceSeconds, left, Math.max(1, nextAt)));
    const load = await wrk(`http://${HOSTS[0]}:${HTTP_PORT}/`, Math.round(slice), WEB_HOST, {
      threads: 2,
      connections,
      timeoutS: 30,
    });
    const memory = pids().map(rss);
    slices.push({
      endSeconds: elapsed(),
      http: load,
      routingMesh: mesh.take(),
      dns: dns.take(),
      rssMb: memory,
      rssFloorMb: memoryFloors.take(),
      fds: pids().map(fds),
    });
    note(`${elapsed()} s: ${JSON.stringify(slices.at(-1))}`);
  }
  await Promise.all(background);
  const endedAt = Date.now();
  memoryFloors.stop();
  await mesh.stop();
  await dns.stop();
  // Idle keep-alive connections to the replicas close after 4 s (their pools' idle timeout):
  // descriptors are compared once they had the time to, or after 20 s.
  const stoppedAt = Date.now();
  const settledFds = () => {
    const now = pids().map(fds);
    return THROUGHOUT.every((i) => (now[i] ?? 0) - (startFds[i] ?? 0) <= GOALS.fdDrift)
      ? now
      : undefined;
  };
  const endFds =
    (await pollUntil(async () => settledFds(), { timeoutMs: 20_000, intervalMs: 500 })) ??
    pids().map(fds);
  const fdsSettledMs = Date.now() - stoppedAt;
  const open = websockets.filter((s) => s.readyState === WebSocket.OPEN).length;
  for (const socket of websockets) socket.close();

  const sum = (pick: (slice: Slice) => number) => slices.reduce((n, slice) => n + pick(slice), 0);
  const failed =
    sum((s) => s.http.errors) + sum((s) => s.routingMesh.failed) + sum((s) => s.dns.failed);
  // Growth after the first slice's length: the floor of the run's last stretch that long
  // against the floor of the one after the first (which holds the start, before the workers have
  // grown to their load). Stretches of the run, not slices: a happening may cut a slice short,
  // and a floor of a few samples is no floor.
  const window = sliceSeconds * 1000;
  const secondFloors = memoryFloors.between(startedAt + window, startedAt + 2 * window);
  const lastFloors = memoryFloors.between(endedAt - window, endedAt);
  const rssGrowthMb = THROUGHOUT.map(
    (i) => Math.round(((lastFloors[i] ?? 0) - (secondFloors[i] ?? 0)) * 10) / 10,
  );
  const fdDrift = THROUGHOUT.map((i) => (endFds[i] ?? 0) - (startFds[i] ?? 0));
  report({
    seconds,
    connections,
    slices,
    events,
    websocketsOpen: open,
    websocketsClosedEarly: closed.count,
    startFds,
    endFds,
    fdsSettledMs,
    rssGrowthMbAfterFirstSlice: rssGrowthMb,
    fdDrift,
    failed,
    routingMeshCutByKill: sum((s) => s.routingMesh.cutByKill),
    held: {
      noFailures: failed === GOALS.failed,
      websocketsOpen: open === GOALS.websocketsOpen,
      rss: rssGrowthMb.every((mb) => mb <= GOALS.rssGrowthMb),
      // More descriptors than at the start is what a leak looks like; fewer (connections pooled
      // at the start since closed, an ingress worker's start-up files) is not one.
      fds: fdDrift.every((drift) => drift <= GOALS.fdDrift),
    },
    goals: GOALS,
  });
}

try {
  await main();
} finally {
  await stopAll();
}
