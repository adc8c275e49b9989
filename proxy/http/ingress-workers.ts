import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Level, Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import type { CertificateRecord } from '../../mesh/api/certificates.js';
import type { UnservedPort } from '../../mesh/api/nodes.js';
import type { HttpLimits } from './limits.js';
import { type MetricsJson, mergeStats, type ServiceStats } from './metrics.js';
import type { HostRoutes } from './routes.js';
import type { KeyPairOf } from './servers.js';
import type { TunnelGrant } from './worker-tunnels.js';

/** How long a worker may take to answer a question (what it saw of a service, its metrics). */
const ASK_TIMEOUT_MS = 5000;
/** The environment variable a worker finds its settings in (JSON). */
export const SETTINGS_VARIABLE = 'MESH_INGRESS_SETTINGS';

/** What an ingress worker is started with. */
export interface IngressSettings {
  nodeId: string;
  advertise: string;
  httpPort: number;
  httpsPort: number;
  trustedProxies: string[];
  responseTimeoutMs: number;
  /** Its share of the node's limits (a replica's seats and the queue split among the workers). */
  limits: HttpLimits;
  /** Connections each listener holds at most (see connectionBudget). */
  maxConnections: number;
  logLevel: string;
}

export type ToWorker =
  /** asOf: the index of the cluster state they were made from (a far node may wait for it). */
  | { type: 'routes'; routes: HostRoutes; asOf: number }
  | { type: 'tunnels'; grant: TunnelGrant }
  | { type: 'certificates'; certificates: ReadonlyMap<string, CertificateRecord> }
  | { type: 'keyPair'; id: number; pair?: { certPem: string; keyPem: string }; error?: string }
  | { type: 'ask'; id: number; question: Question };

/** What the agent asks the workers, and what each question is answered with. */
export type Question =
  | { what: 'stats'; serviceId: string }
  | { what: 'metrics' }
  | { what: 'requests' }
  | { what: 'routesAsOf' };
export interface Answers {
  /** What the ingress saw of a service (undefined: nothing yet). */
  stats: ServiceStats | undefined;
  /** Requests answered per service since the worker started. */
  requests: Record<string, number>;
  /** The worker's metrics, as prom-client gives them to be summed (getMetricsAsJSON). */
  metrics: MetricsJson;
  /** The index of the cluster state its routes were made from. */
  routesAsOf: number;
}

export type ToMain =
  /** Its message handler is in place: a message sent before would have been lost. */
  | { type: 'started' }
  /** It listens on the ports it could take (at its start, and after trying again): the others. */
  | { type: 'listening'; refused: UnservedPort[] }
  | { type: 'log'; line: string }
  | { type: 'keyPair'; id: number; host: string }
  | { type: 'answer'; id: number; value: unknown };

/** A worker that dies is started again after this. */
const RESTART_MS = 1000;
/**
 * glibc's malloc arenas a worker may keep, unless the environment says: fewer arenas hold less
 * memory freed. Under 1,000 connections, workers with glibc's default (8 per core) grew by about
 * 50 MB each in four minutes, in both runs; with 2, they held flat in two runs of five, and grew
 * as much in the other three (bench:soak): one cause of growth at most, not all of it.
 */
const MALLOC_ARENAS = '2';

/** A limit split among the workers, each holding at least one. */
function share(limit: number, workers: number): number {
  return Math.max(1, Math.ceil(limit / workers));
}

/**
 * The agent's side of the HTTP ingress: `workers` processes (ingress-worker.ts), each with every
 * listener: the cluster module hands each the same listening sockets, and the kernel gives each
 * connection to one of those accepting (no process passes connections on). It keeps them told of
 * the routes, the certificates and what they need to reach other nodes themselves
 * (worker-tunnels.ts), opens certificate keys for them, writes their log lines, sums what they
 * counted, and starts one again should it die.
 */
export class IngressWorkers {
  private readonly workers = new Set<Worker>();
  /** The workers whose message handler is in place (a message sent before it is lost). */
  private readonly hearing = new Set<Worker>();
  private routes: { routes: HostRoutes; asOf: number } = { routes: new Map(), asOf: 0 };
  private grant: TunnelGrant | undefined;
  private certificates: ReadonlyMap<string, CertificateRecord> = new Map();
  private readonly asked = new Map<number, (value: unknown) => void>();
  private nextAsk = 0;
  private started = false;
  private spawning: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly options: {
      settings: Omit<IngressSettings, 'logLevel'>;
      /** How many processes serve the ingress (the node's cores, unless told). */
      workers: number;
      keyPairOf: KeyPairOf;
      /**
       * A worker listens (the first ones start with the first route), or tried its refused ports
       * again: the node serves its ingress on the ports it could take (refused: the others, why).
       */
      onListening: (refused: UnservedPort[]) => void;
      log: Logger;
    },
  ) {}

  /**
   * Starts the workers once there is something to serve (a route, a certificate), now or with
   * the first: an idle agent saves the memory they hold. Resolves once they listen, if they
   * were started (a port one cannot take is logged by it).
   */
  async start(): Promise<void> {
    this.started = true;
    if (this.hasWork()) await this.spawnAll();
  }

  setRoutes(routes: HostRoutes, asOf: number): void {
    this.routes = { routes, asOf };
    this.post({ type: 'routes', routes, asOf });
    this.startWhenNeeded();
  }

  setTunnels(grant: TunnelGrant): void {
    this.grant = grant;
    this.post({ type: 'tunnels', grant });
  }

  setCertificates(certificates: ReadonlyMap<string, CertificateRecord>): void {
    this.certificates = certificates;
    this.post({ type: 'certificates', certificates });
    this.startWhenNeeded();
  }

  private hasWork(): boolean {
    return this.routes.routes.size > 0 || this.certificates.size > 0;
  }

  private startWhenNeeded(): void {
    if (this.started && !this.closed && this.hasWork()) void this.spawnAll();
  }

  /** What the ingress saw of a service, summed over the workers (undefined: nothing yet). */
  async stats(serviceId: string): Promise<ServiceStats | undefined> {
    const each = await this.askAll({ what: 'stats', serviceId });
    return mergeStats(each.filter((s): s is ServiceStats => s !== undefined));
  }

  /** Requests answered per service since the workers started (none while none runs). */
  async requests(): Promise<Record<string, number>> {
    const totals: Record<string, number> = {};
    for (const answer of await this.askAll({ what: 'requests' }))
      for (const [service, n] of Object.entries(answer ?? {}))
        totals[service] = (totals[service] ?? 0) + n;
    return totals;
  }

  /**
   * Whether every worker holds the routes posted so far, once each answered (a worker reads its
   * messages in order: its answer comes after the routes sent before the question), or false once
   * one did not within `timeoutMs`. A worker still starting is given the latest routes as it
   * starts.
   */
  async holdLatestRoutes(timeoutMs: number): Promise<boolean> {
    const posted = this.routes.asOf;
    const each = await this.askAll({ what: 'routesAsOf' }, timeoutMs);
    return each.every((asOf) => asOf !== undefined && asOf >= posted);
  }

  /** The workers' metrics summed, in the Prometheus text format ('' while none runs). */
  async metrics(): Promise<string> {
    const each = (await this.askAll({ what: 'metrics' })).filter(
      (m): m is MetricsJson => m !== undefined,
    );
    if (each.length === 0) return '';
    return AggregatorRegistry.aggregate(each).metrics();
  }

  /** Asks each worker that hears messages: one starting has nothing to say yet. */
  private askAll<Q extends Question>(
    question: Q,
    timeoutMs = ASK_TIMEOUT_MS,
  ): Promise<Array<Answers[Q['what']] | undefined>> {
    return Promise.all([...this.hearing].map((worker) => this.ask(worker, question, timeoutMs)));
  }

  private ask<Q extends Question>(
    worker: Worker,
    question: Q,
    timeoutMs: number,
  ): Promise<Answers[Q['what']] | undefined> {
    return new Promise((resolve) => {
      const id = ++this.nextAsk;
      // A worker that does not answer in time (busy, or stopping) has nothing to say, as far as
      // the asker knows: nothing waits on it for good.
      const timer = setTimeout(() => {
        this.asked.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.asked.set(id, (value) => {
        clearTimeout(timer);
        resolve(value as Answers[Q['what']] | undefined);
      });
      this.send(worker, { type: 'ask', id, question });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const resolve of this.asked.values()) resolve(undefined);
    this.asked.clear();
    // Connections in flight end with them, as they did when the listeners closed.
    await Promise.all(
      [...this.workers].map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) resolve();
            else worker.once('exit', () => resolve());
            worker.process.kill('SIGKILL');
          }),
      ),
    );
    this.workers.clear();
    this.hearing.clear();
  }

  private post(message: ToWorker): void {
    for (const worker of this.workers) this.send(worker, message);
  }

  /** A message to a worker; one that is stopping misses it (it is started again with the state). */
  private send(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message);
  }

  /** Starts the workers missing; resolves once each listens (or is gone). */
  private spawnAll(): Promise<void> {
    this.spawning ??= Promise.all(
      Array.from({ length: this.options.workers - this.workers.size }, () => this.spawn()),
    ).then(() => {
      this.spawning = undefined;
    });
    return this.spawning;
  }

  private spawn(): Promise<void> {
    const { settings, log, workers } = this.options;
    // Each connection goes to the worker whose accept the kernel answers, none through the agent.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({
      exec: fileURLToPath(new URL('./ingress-worker.js', import.meta.url)),
      args: [],
      // Maps (the routes, the certificates) cross as they are.
      serialization: 'advanced',
    });
    const { requestsPerReplica, queueLength } = settings.limits;
    const worker = cluster.fork({
      MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? MALLOC_ARENAS,
      [SETTINGS_VARIABLE]: JSON.stringify({
        ...settings,
        limits: {
          ...settings.limits,
          requestsPerReplica: share(requestsPerReplica, workers),
          queueLength: share(queueLength, workers),
        },
        logLevel: log.level,
      } satisfies IngressSettings),
    });
    this.workers.add(worker);
    worker.on('error', (error) =>
      log.error({ reason: error.message }, 'an HTTP ingress worker failed'),
    );
    worker.on('exit', (code, signal) => {
      this.workers.delete(worker);
      this.hearing.delete(worker);
      if (this.closed) return;
      log.error(
        { code, signal, restartInMs: RESTART_MS },
        'an HTTP ingress worker stopped: starting another',
      );
      setTimeout(() => {
        if (!this.closed) void this.spawnAll();
      }, RESTART_MS);
    });
    return new Promise((resolve) => {
      worker.on('message', (message: ToMain) => {
        if (message.type === 'listening') {
          resolve();
          this.options.onListening(message.refused);
        } else if (message.type === 'started') {
          this.hearing.add(worker);
          // What to serve, before it listens (it listens once it has both).
          if (this.grant) this.send(worker, { type: 'tunnels', grant: this.grant });
          this.send(worker, { type: 'routes', ...this.routes });
          this.send(worker, { type: 'certificates', certificates: this.certificates });
        } else this.received(worker, message);
      });
      worker.once('exit', () => resolve());
    });
  }

  private received(
    worker: Worker,
    message: Exclude<ToMain, { type: 'listening' | 'started' }>,
  ): void {
    switch (message.type) {
      case 'log':
        this.relog(message.line);
        break;
      case 'keyPair':
        this.options.keyPairOf(message.host).then(
          (pair) => this.send(worker, { type: 'keyPair', id: message.id, pair }),
          (error: Error) =>
            this.send(worker, { type: 'keyPair', id: message.id, error: error.message }),
        );
        break;
      case 'answer':
        this.asked.get(message.id)?.(message.value);
        this.asked.delete(message.id);
        break;
    }
  }

  /** A line a worker logged, written by the agent's logger (its node field and format). */
  private relog(line: string): void {
    const { level, msg, ...fields } = JSON.parse(line) as Record<string, unknown> & {
      level: number;
      msg?: string;
    };
    const { log } = this.options;
    log[(log.levels.labels[level] ?? 'info') as Level](fields, msg);
  }
}
