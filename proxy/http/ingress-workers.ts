import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Level, Logger } from 'pino';
import type { CertificateRecord } from '../../mesh/api/certificates.js';
import { DialBridge } from './dial-bridge.js';
import type { HttpLimits } from './limits.js';
import type { ServiceStats } from './metrics.js';
import type { HostRoutes } from './routes.js';
import type { KeyPairOf } from './servers.js';

/** How long the thread may take to answer a question (what it saw of a service, its metrics). */
const ASK_TIMEOUT_MS = 5000;

/** What the ingress thread is started with. */
export interface IngressSettings {
  nodeId: string;
  advertise: string;
  httpPort: number;
  httpsPort: number;
  trustedProxies: string[];
  responseTimeoutMs: number;
  limits: HttpLimits;
  /** Connections each listener holds at most (see connectionBudget). */
  maxConnections: number;
  logLevel: string;
  /** The main thread's dial bridge: its abstract Unix socket and the secret it asks for. */
  bridge: { path: string; secret: string };
}

export type ToWorker =
  | { type: 'routes'; routes: HostRoutes }
  | { type: 'certificates'; certificates: ReadonlyMap<string, CertificateRecord> }
  | { type: 'keyPair'; id: number; pair?: { certPem: string; keyPem: string }; error?: string }
  | { type: 'ask'; id: number; question: Question };

/** What the agent asks the thread, and what each question is answered with. */
export type Question =
  | { what: 'stats'; serviceId: string }
  | { what: 'metrics' }
  | { what: 'requests' };
export interface Answers {
  /** What the ingress saw of a service (undefined: nothing yet). */
  stats: ServiceStats | undefined;
  /** Requests answered per service since the thread started. */
  requests: Record<string, number>;
  /** The thread's metrics, in the Prometheus text format. */
  metrics: string;
}

export type ToMain =
  | { type: 'listening' }
  | { type: 'log'; line: string }
  | { type: 'keyPair'; id: number; host: string }
  | { type: 'answer'; id: number; value: unknown };

/** A worker that dies is started again after this. */
const RESTART_MS = 1000;

/**
 * The agent's side of the ingress thread (ingress-worker.ts): starts it, keeps it told of the
 * routes and certificates, opens certificate keys and streams to other nodes for it, writes its
 * log lines, and starts it again should it die.
 */
export class IngressThread {
  private worker: Worker | undefined;
  private readonly bridge: DialBridge;
  private routes: HostRoutes = new Map();
  private certificates: ReadonlyMap<string, CertificateRecord> = new Map();
  private readonly asked = new Map<number, (value: unknown) => void>();
  private nextAsk = 0;
  private started = false;
  private closed = false;

  constructor(
    private readonly options: {
      settings: Omit<IngressSettings, 'bridge' | 'logLevel'>;
      /** A stream to what another node serves (its HTTP relay, or a task's port). */
      openRemote: (nodeId: string, target: string) => Promise<Duplex>;
      keyPairOf: KeyPairOf;
      log: Logger;
    },
  ) {
    const path = `\0mesh-ingress-${options.settings.nodeId}-${randomBytes(4).toString('hex')}`;
    this.bridge = new DialBridge(path, options.openRemote, options.log);
  }

  /**
   * Starts the thread once it has something to serve (a route, a certificate), now or with the
   * first: an idle agent saves the 12 MB a thread holds. Resolves once it listens, if it was
   * started (a port it cannot take is logged by it).
   */
  async start(): Promise<void> {
    await this.bridge.listen();
    this.started = true;
    if (this.hasWork()) await this.spawn();
  }

  setRoutes(routes: HostRoutes): void {
    this.routes = routes;
    this.post({ type: 'routes', routes });
    this.startWhenNeeded();
  }

  setCertificates(certificates: ReadonlyMap<string, CertificateRecord>): void {
    this.certificates = certificates;
    this.post({ type: 'certificates', certificates });
    this.startWhenNeeded();
  }

  private hasWork(): boolean {
    return this.routes.size > 0 || this.certificates.size > 0;
  }

  private startWhenNeeded(): void {
    if (!this.worker && this.started && !this.closed && this.hasWork()) void this.spawn();
  }

  /** What the ingress saw of a service (undefined: nothing yet, or the thread is not running). */
  stats(serviceId: string): Promise<ServiceStats | undefined> {
    return this.ask({ what: 'stats', serviceId }, undefined);
  }

  /** Requests answered per service since the thread started (none while it is not running). */
  requests(): Promise<Record<string, number>> {
    return this.ask({ what: 'requests' }, {});
  }

  /** The thread's metrics in the Prometheus text format ('' while it is not running). */
  metrics(): Promise<string> {
    return this.ask({ what: 'metrics' }, '');
  }

  private ask<Q extends Question>(
    question: Q,
    otherwise: Answers[Q['what']],
  ): Promise<Answers[Q['what']]> {
    if (!this.worker) return Promise.resolve(otherwise);
    return new Promise((resolve) => {
      const id = ++this.nextAsk;
      // A thread that does not answer in time (busy, or stopping) has nothing to say, as far as
      // the asker knows: nothing waits on it for good.
      const timer = setTimeout(() => {
        this.asked.delete(id);
        resolve(otherwise);
      }, ASK_TIMEOUT_MS);
      this.asked.set(id, (value) => {
        clearTimeout(timer);
        resolve(value as Answers[Q['what']]);
      });
      this.post({ type: 'ask', id, question });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.bridge.close();
    for (const resolve of this.asked.values()) resolve(undefined);
    this.asked.clear();
    // Connections in flight end with it, as they did when its listeners closed on this thread.
    await worker?.terminate();
  }

  private post(message: ToWorker): void {
    this.worker?.postMessage(message);
  }

  private spawn(): Promise<void> {
    const { settings, log } = this.options;
    const worker = new Worker(new URL('./ingress-worker.js', import.meta.url), {
      workerData: {
        ...settings,
        bridge: { path: this.bridge.path, secret: this.bridge.secret },
        logLevel: log.level,
      } satisfies IngressSettings,
    });
    this.worker = worker;
    worker.postMessage({ type: 'routes', routes: this.routes } satisfies ToWorker);
    worker.postMessage({
      type: 'certificates',
      certificates: this.certificates,
    } satisfies ToWorker);
    worker.on('error', (error) =>
      log.error({ reason: error.message, stack: error.stack }, 'the HTTP ingress thread failed'),
    );
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const resolve of this.asked.values()) resolve(undefined);
      this.asked.clear();
      if (this.closed) return;
      log.error(
        { code, restartInMs: RESTART_MS },
        'the HTTP ingress thread stopped: restarting it',
      );
      setTimeout(() => {
        // New routes may have started it again already.
        if (!this.closed && !this.worker) void this.spawn();
      }, RESTART_MS);
    });
    return new Promise((resolve) => {
      worker.on('message', (message: ToMain) => {
        if (message.type === 'listening') resolve();
        else this.received(worker, message);
      });
      worker.once('exit', () => resolve());
    });
  }

  private received(worker: Worker, message: Exclude<ToMain, { type: 'listening' }>): void {
    switch (message.type) {
      case 'log':
        this.relog(message.line);
        break;
      case 'keyPair':
        this.options.keyPairOf(message.host).then(
          (pair) =>
            worker.postMessage({ type: 'keyPair', id: message.id, pair } satisfies ToWorker),
          (error: Error) =>
            worker.postMessage({
              type: 'keyPair',
              id: message.id,
              error: error.message,
            } satisfies ToWorker),
        );
        break;
      case 'answer':
        this.asked.get(message.id)?.(message.value);
        this.asked.delete(message.id);
        break;
    }
  }

  /** A line the thread logged, written by the agent's logger (its node field and format). */
  private relog(line: string): void {
    const { level, msg, ...fields } = JSON.parse(line) as Record<string, unknown> & {
      level: number;
      msg?: string;
    };
    const { log } = this.options;
    log[(log.levels.labels[level] ?? 'info') as Level](fields, msg);
  }
}
