/**
 * An HTTP ingress worker: a process of the agent's (the cluster module's) with every listener of
 * the ingress, the ingress and its keep-alive pools. Requests share neither the event loop of
 * Raft, gossip, DNS and the control API (a flood of them holds none of those up) nor their heap,
 * and the workers spread over the machine's cores. The agent sends the routes and
 * certificates; a replica on this node is dialled directly, one elsewhere over this worker's own
 * streams to that node (worker-tunnels.ts).
 */
import { pino } from 'pino';
import type { CertificateRecord } from '../../mesh/api/certificates.js';
import { contains, parseCidr } from '../../mesh/api/network.js';
import { holdHeapGrowth } from '../host/heap-growth.js';
import { CONNECT_TIMEOUT_MS, dialEndpoint } from '../l4/forwarder.js';
import type { Endpoint } from '../routing-table.js';
import { formatStreamTarget } from '../stream-target.js';
import { HttpIngress } from './ingress.js';
import {
  type IngressSettings,
  type Question,
  SETTINGS_VARIABLE,
  type ToMain,
  type ToWorker,
} from './ingress-workers.js';
import type { HostRoutes } from './routes.js';
import { IngressServers, type KeyPairOf } from './servers.js';
import { WorkerTunnels } from './worker-tunnels.js';

const given = process.env[SETTINGS_VARIABLE];
const parent = process.send?.bind(process);
if (!given || !parent) throw new Error('the ingress worker runs as a process of the agent');
const settings = JSON.parse(given) as IngressSettings;
// The agent gone, its workers go with it (they hold nothing it does not). A message sent as it
// died fails with EPIPE before 'disconnect' is seen: that ends this process too, quietly (sent
// without a callback, the failure was an unhandled 'error' with a stack in the agent's log).
const exitIfUnsent = (error: Error | null) => {
  if (error) process.exit(0);
};
const send = (message: ToMain) => {
  if (process.connected) parent(message, undefined, undefined, exitIfUnsent);
};
process.on('disconnect', () => process.exit(0));
holdHeapGrowth();

// Lines go to the agent, which writes them with its own logger.
const log = pino(
  { level: settings.logLevel, base: undefined, timestamp: false },
  { write: (line: string) => send({ type: 'log', line }) },
);

let routes: HostRoutes = new Map();
/** The index of the cluster state the routes were made from. */
let routesAsOf = 0;
const tunnels = new WorkerTunnels(settings.advertise, CONNECT_TIMEOUT_MS, log);
let toldWhatToServe: () => void = () => undefined;
const told = new Promise<void>((resolve) => {
  toldWhatToServe = resolve;
});
let certificates: ReadonlyMap<string, CertificateRecord> = new Map();
const asked = new Map<
  number,
  { resolve: (pair: { certPem: string; keyPem: string }) => void; reject: (error: Error) => void }
>();
let nextAsk = 0;

/** How long the agent may take to open a certificate's key (it may ask a voter for it). */
const KEY_PAIR_TIMEOUT_MS = 15_000;

const keyPairOf: KeyPairOf = (host) =>
  new Promise((resolve, reject) => {
    const id = ++nextAsk;
    const timer = setTimeout(() => {
      asked.delete(id);
      reject(new Error(`no key for ${host} from the agent within ${KEY_PAIR_TIMEOUT_MS / 1000} s`));
    }, KEY_PAIR_TIMEOUT_MS);
    const settled = () => clearTimeout(timer);
    asked.set(id, {
      resolve: (pair) => {
        settled();
        resolve(pair);
      },
      reject: (error) => {
        settled();
        reject(error);
      },
    });
    send({ type: 'keyPair', id, host });
  });

/**
 * A connection to an endpoint's port: dialled here when on this node, else a stream there (to
 * the port itself, or to the HTTP relay in front of it: see PoolConnects).
 */
function connectTo(kind: 'tcp' | 'http') {
  return (endpoint: Endpoint, target: number) => {
    if (endpoint.nodeId === settings.nodeId) return dialEndpoint(endpoint, target);
    const name = formatStreamTarget({ kind, taskId: endpoint.taskId, port: target });
    return tunnels.open(endpoint.nodeId, name, routesAsOf);
  };
}

const trusted = settings.trustedProxies.map((cidr) => parseCidr(cidr, 32));
const ingress = new HttpIngress({
  routes: () => routes,
  connect: connectTo('tcp'),
  connectOutliving: connectTo('http'),
  trusted: (ip) => trusted.some((range) => contains(range, ip)),
  responseTimeoutMs: settings.responseTimeoutMs,
  limits: settings.limits,
  log,
});
const servers = new IngressServers(
  ingress,
  () => certificates,
  keyPairOf,
  settings.limits,
  settings.maxConnections,
  log,
);

/** It listens (on the ports it could take): from then on, refused ones are tried again. */
let listening = false;

process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'routes': {
      routes = message.routes;
      routesAsOf = message.asOf;
      const listed = new Set<string>();
      for (const list of routes.values())
        for (const route of list) for (const e of route.service.endpoints) listed.add(e.taskId);
      ingress.retain(listed);
      // A port that was taken is tried again on every change, as published ports are.
      if (listening)
        void servers.retryRefused().then((refused) => {
          if (refused) send({ type: 'listening', refused });
        });
      break;
    }
    case 'tunnels':
      tunnels.update(message.grant);
      break;
    case 'certificates':
      certificates = message.certificates;
      servers.warm();
      toldWhatToServe();
      break;
    case 'keyPair': {
      const waiting = asked.get(message.id);
      asked.delete(message.id);
      if (message.pair) waiting?.resolve(message.pair);
      else waiting?.reject(new Error(message.error ?? 'no key'));
      break;
    }
    case 'ask':
      void answer(message.question).then((value) =>
        send({ type: 'answer', id: message.id, value }),
      );
      break;
  }
});

function answer(question: Question): Promise<unknown> {
  if (question.what === 'stats') return ingress.metrics.of(question.serviceId);
  if (question.what === 'requests') return ingress.metrics.requestsByService();
  if (question.what === 'routesAsOf') return Promise.resolve(routesAsOf);
  return ingress.metrics.json();
}

// The agent sends the routes, then the certificates, once told this process hears them.
send({ type: 'started' });
await told;
const refused = await servers.listen(settings.advertise, settings.httpPort, settings.httpsPort);
servers.warm();
send({ type: 'listening', refused });
listening = true;
