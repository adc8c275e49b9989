import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type Duplex, Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { LimitedLog } from '../../mesh/limited-log.js';
import { among, EndpointCounters, type Seat, tryEndpoints } from '../l4/balancer.js';
import { splice } from '../l4/splice.js';
import { type Endpoint, type ServiceRoute, servingPort } from '../routing-table.js';
import { authorityOf, forwardHeaders, toOriginForm, withoutHopByHop } from './headers.js';
import type { HttpLimits } from './limits.js';
import { IngressMetrics } from './metrics.js';
import { Pipeline } from './pipeline.js';
import { type Connect, ReplicaUnreachable, UpstreamPools } from './pools.js';
import { RELAY_UNREACHABLE_HEADER } from './relay.js';
import { QueueRefusal, ReplicaQueue } from './replica-queue.js';
import { causeOf, type FailureCause, retryable } from './retry.js';
import { forwardedPath, type HostRoutes, type HttpRoute, hostOnly, matchRoute } from './routes.js';

/**
 * Attempts per request, each at another replica (as HAProxy's `retries 3`): while a rollout or a
 * dead node is still making its way into every node's table, two replicas in a row may be gone.
 */
const MAX_ATTEMPTS = 3;
/** Pipelined requests of one connection that may wait their turn (browsers send a few at most). */
const MAX_PIPELINED = 64;

export interface IngressOptions {
  routes: () => HostRoutes;
  /**
   * A connection to the replica's port itself: for the keep-alive pools, and for upgrades
   * (WebSockets) spliced end to end.
   */
  connect: Connect;
  /** For the pool of a replica that closes its connection after each answer (PoolConnects). */
  connectOutliving?: Connect;
  /** Whether a peer's own X-Forwarded-* headers are believed (a load balancer in front). */
  trusted: (ip: string) => boolean;
  responseTimeoutMs: number;
  limits: HttpLimits;
  log: Logger;
}

/** What a request sends on: nothing, its whole body, or the part read and the rest as it comes. */
type RequestBody = Buffer | AsyncIterable<Buffer> | null;

/** How an exchange with a replica failed. */
interface ExchangeFailure {
  error: Error;
  cause: FailureCause;
  /** The replica (or its node's relay) did not take the connection: it is passed over a while. */
  unreachable: boolean;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The HTTP ingress on every node: a request goes by its Host and path to a ready replica of the
 * route's service anywhere in the cluster, over a keep-alive pool per replica, bodies streamed
 * both ways. WebSocket upgrades are spliced through; nothing idles out on a timer.
 */
export class HttpIngress {
  readonly metrics = new IngressMetrics();
  /** Requests in flight per replica (and recent failures): what the queue seats by. */
  readonly counters = new EndpointCounters();
  /**
   * Upgraded connections per replica, counted apart: a replica holding many WebSockets still
   * takes its share of requests.
   */
  private readonly tunnels = new EndpointCounters();
  private readonly queue: ReplicaQueue;
  /** Each service's route in the table now, for requests waiting for one of its replicas. */
  private servicesNow: Map<string, ServiceRoute> | undefined;
  private readonly pools: UpstreamPools;
  /** The access log is at debug level: without it, nothing is built for it per request. */
  private readonly accessLog: boolean;
  /** Per client connection: its requests in turn (see handle). */
  private readonly pipelines = new WeakMap<Socket, Pipeline>();
  /** What a client can make the ingress warn about, a line a minute per client. */
  private readonly warnings: LimitedLog;
  /**
   * A replica failing a burst of requests, or a service's queue refusing them: a line a second
   * per replica or service (the count of the others logged once the second is over).
   */
  private readonly replicaWarnings: LimitedLog;

  constructor(private readonly options: IngressOptions) {
    this.pools = new UpstreamPools(
      { direct: options.connect, outliving: options.connectOutliving },
      options.responseTimeoutMs,
    );
    this.accessLog = options.log.isLevelEnabled('debug');
    this.warnings = new LimitedLog(options.log, 1);
    this.replicaWarnings = new LimitedLog(options.log, 1, Date.now, 1000);
    const { requestsPerReplica, queueLength, queueTimeoutMs } = options.limits;
    this.queue = new ReplicaQueue(this.counters, {
      perReplica: requestsPerReplica,
      length: queueLength,
      waitMs: queueTimeoutMs,
    });
  }

  /** The routing table changed: keeps the pools of the replicas still listed, seats new ones. */
  retain(taskIds: ReadonlySet<string>): void {
    this.pools.retain(taskIds);
    this.counters.retain(taskIds);
    this.tunnels.retain(taskIds);
    this.servicesNow = undefined;
    this.queue.refresh();
  }

  /** The requests waiting for a replica of the service, now. */
  waiting(serviceId: string): number {
    return this.queue.depth(serviceId);
  }

  close(): void {
    this.pools.close();
  }

  /**
   * A request of a client connection. Pipelined ones wait their turn, one at a time per
   * connection (as a client that does not pipeline would send them): one connection costs one
   * request to a replica at most, and what is queued when the client goes is never sent.
   */
  handle(req: IncomingMessage, res: ServerResponse, scheme: 'http' | 'https'): void {
    // HTTP/2 has no pipelining: a client's requests are streams, each answered when it is ready.
    if (req.httpVersionMajor >= 2) {
      this.serve(req, res, scheme);
      return;
    }
    const { socket } = req;
    let pipeline = this.pipelines.get(socket);
    if (!pipeline) {
      const created = new Pipeline(MAX_PIPELINED);
      socket.once('close', () => created.clear());
      this.pipelines.set(socket, created);
      pipeline = created;
    }
    const queued = pipeline.add((over) => {
      res.once('finish', over);
      res.once('close', over);
      this.serve(req, res, scheme);
    });
    if (queued) return;
    this.warnings.warn(
      socket.remoteAddress ?? 'client',
      { client: socket.remoteAddress, waiting: MAX_PIPELINED },
      'a client pipelined more requests than are served in turn: its connection is closed',
    );
    socket.destroy();
  }

  private serve(req: IncomingMessage, res: ServerResponse, scheme: 'http' | 'https'): void {
    toOriginForm(req);
    const started = performance.now();
    // Read now: by the time the answer is finished the socket may be gone from the request.
    const client = req.socket.remoteAddress;
    const route = this.route(req);
    if (route instanceof Refusal) {
      this.refuse(res, route);
      return;
    }
    const headers = forwardHeaders(req, scheme, this.options.trusted);
    const path = forwardedPath(route, req.url ?? '/');
    res.once('finish', () => {
      const ms = performance.now() - started;
      this.metrics.record(route.service.id, res.statusCode, ms);
      if (this.accessLog)
        this.options.log.debug(
          {
            service: route.service.id,
            method: req.method,
            path: req.url,
            status: res.statusCode,
            ms: Math.round(ms),
            client,
          },
          'request',
        );
    });
    if (!hasBody(req)) {
      void this.forward(req, res, route, path, headers, null);
      return;
    }
    void this.bodyOf(req, res).then((body) => {
      if (body) void this.forward(req, res, route, path, headers, body);
    });
  }

  /**
   * Reads a request's body before any replica is asked, up to the buffer's size, so that a slow
   * upload holds no replica's connection; a larger body streams from there, the client having
   * shown it sends. A client silent for the body timeout is answered 408; undefined then.
   */
  private bodyOf(req: IncomingMessage, res: ServerResponse): Promise<RequestBody | undefined> {
    const { bodyBufferBytes, bodyTimeoutMs } = this.options.limits;
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let timer: NodeJS.Timeout;
      const stop = () => {
        clearTimeout(timer);
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('close', onClose);
      };
      const idle = () => {
        stop();
        this.refuse(res, new Refusal(408, `no request body for ${bodyTimeoutMs / 1000} s`), true);
        resolve(undefined);
      };
      const onData = (chunk: Buffer) => {
        clearTimeout(timer);
        chunks.push(chunk);
        size += chunk.length;
        if (size <= bodyBufferBytes) {
          timer = setTimeout(idle, bodyTimeoutMs);
          return;
        }
        req.pause();
        stop();
        resolve(streamed(chunks, req, bodyTimeoutMs));
      };
      const onEnd = () => {
        stop();
        resolve(Buffer.concat(chunks));
      };
      const onClose = () => {
        stop();
        resolve(undefined);
      };
      timer = setTimeout(idle, bodyTimeoutMs);
      req.on('data', onData);
      req.once('end', onEnd);
      req.once('close', onClose);
    });
  }

  /** A WebSocket (or other) upgrade: the request head is sent on, then both sides are spliced. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, scheme: 'http' | 'https'): void {
    socket.on('error', () => socket.destroy());
    toOriginForm(req);
    const route = this.route(req);
    if (route instanceof Refusal) {
      socket.end(rawResponse(route.status, route.message));
      return;
    }
    const headers = forwardHeaders(req, scheme, this.options.trusted, true);
    const lines = [`${req.method} ${forwardedPath(route, req.url ?? '/')} HTTP/1.1`];
    for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
    const requestHead = `${lines.join('\r\n')}\r\n\r\n`;
    void tryEndpoints<Duplex>(
      among(this.tunnels, servingPort(route.service, route.target)),
      MAX_ATTEMPTS,
      async (lease) => {
        try {
          return { done: await this.options.connect(lease.endpoint, route.target) };
        } catch (error) {
          lease.failed();
          this.warnNotTaken(lease.endpoint, error as Error);
          return { again: error as Error };
        }
      },
    ).then((taken) => {
      if ('lastFailure' in taken) {
        socket.end(
          taken.lastFailure
            ? rawResponse(
                502,
                `no replica of ${route.service.id} took the connection: ${taken.lastFailure.message}`,
              )
            : rawResponse(503, `service ${route.service.id} has no ready replica`),
        );
        return;
      }
      const { lease, value: upstream } = taken;
      upstream.write(requestHead);
      if (head.length > 0) upstream.write(head);
      void splice(socket, upstream).then(() => lease.release());
    });
  }

  /**
   * Where a request's attempts find their replica: the queue of its service, which reads the
   * service's endpoints from the table as it is when a seat frees (replicas come and go while a
   * request waits).
   */
  private seatFor(route: HttpRoute, res: ServerResponse): Seat {
    const serviceId = route.service.id;
    const endpoints = () => servingPort(this.serviceNow(serviceId) ?? route.service, route.target);
    const onLeave = (listener: () => void) => {
      res.once('close', listener);
      return () => res.off('close', listener);
    };
    return (tried) => this.queue.seat(serviceId, endpoints, tried, onLeave);
  }

  private serviceNow(serviceId: string): ServiceRoute | undefined {
    if (!this.servicesNow) {
      this.servicesNow = new Map();
      for (const list of this.options.routes().values())
        for (const route of list) this.servicesNow.set(route.service.id, route.service);
    }
    return this.servicesNow.get(serviceId);
  }

  private route(req: IncomingMessage): HttpRoute | Refusal {
    const hostHeader = authorityOf(req);
    const route = matchRoute(this.options.routes(), hostHeader, req.url ?? '/');
    if (!route)
      return new Refusal(
        404,
        `no service answers for host "${hostOnly(hostHeader)}" on this cluster`,
      );
    if (route.service.endpoints.length === 0)
      return new Refusal(503, `service ${route.service.id} has no ready replica`);
    return route;
  }

  private warnNotTaken(endpoint: Endpoint, error: Error): void {
    this.replicaWarnings.warn(
      endpoint.taskId,
      { task: endpoint.taskId, onNode: endpoint.nodeId, reason: error.message },
      'replica did not take the request; trying another',
    );
  }

  /** Sends a request to a replica, and to another when the first failed so (see retryable). */
  private async forward(
    req: IncomingMessage,
    res: ServerResponse,
    route: HttpRoute,
    path: string,
    headers: string[],
    body: RequestBody,
  ): Promise<void> {
    // A body read whole can be sent again; one still streaming from the client cannot.
    const resendable = body === null || Buffer.isBuffer(body);
    const taken = await tryEndpoints<ExchangeFailure | undefined>(
      this.seatFor(route, res),
      MAX_ATTEMPTS,
      async (lease, n) => {
        const failure = await this.exchange(
          lease.endpoint,
          route.target,
          req,
          res,
          path,
          headers,
          body,
        );
        if (!failure || res.headersSent) return { done: failure };
        if (failure.unreachable) {
          lease.failed();
          this.warnNotTaken(lease.endpoint, failure.error);
        } else if (failure.cause === 'broken') {
          // Its connection broke before any answer: the replica (or its node) is likely gone, and
          // the request goes again to another, not to it.
          lease.failed();
        }
        const again = n < MAX_ATTEMPTS && retryable(failure.cause, req.method ?? '', resendable);
        return again ? { again: failure.error } : { done: failure };
      },
    ).catch((error: Error) => {
      if (error instanceof QueueRefusal) return error;
      throw error;
    });
    if (taken instanceof QueueRefusal) {
      if (!res.destroyed) {
        this.replicaWarnings.warn(
          route.service.id,
          { service: route.service.id, reason: taken.message },
          'requests waited too long for a replica: answered 503',
        );
        this.refuse(res, new Refusal(503, taken.message));
      }
      return;
    }
    if ('lastFailure' in taken) {
      const last = taken.lastFailure ? ` (last: ${taken.lastFailure.message})` : '';
      this.refuseFailed(
        res,
        route,
        new Refusal(502, `no replica of ${route.service.id} took the request${last}`),
      );
      return;
    }
    taken.lease.release();
    const failure = taken.value;
    if (!failure) return;
    if (res.headersSent) {
      res.destroy(failure.error);
      return;
    }
    this.refuseFailed(
      res,
      route,
      failure.cause === 'timeout'
        ? new Refusal(
            504,
            `gateway timeout: no answer from ${taken.lease.endpoint.taskId} within ${this.options.responseTimeoutMs / 1000} s`,
          )
        : new Refusal(502, `bad gateway: ${failure.error.message}`),
    );
  }

  /**
   * One exchange with a replica, over its pool: the answer written straight into the response,
   * with backpressure (a full response pauses the replica's connection until it drains).
   * Resolves with how it failed, if it did.
   */
  private exchange(
    endpoint: Endpoint,
    target: number,
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    headers: string[],
    body: RequestBody,
  ): Promise<ExchangeFailure | undefined> {
    return new Promise((resolve) => {
      let relayRefused = false;
      let finished = false;
      let slowReader: NodeJS.Timeout | undefined;
      // The client went away: so does the request to the replica, whenever it left. One that left
      // while the request waited for a connection would otherwise get an answer nobody takes, and
      // the connection, paused for it, would stay open for ever (a body has no idle limit).
      let abortRequest: (() => void) | undefined;
      let clientLeft = clientGone(res);
      const onClientClose = () => {
        if (res.writableFinished) return;
        clientLeft = true;
        abortRequest?.();
      };
      res.once('close', onClientClose);
      const settle = (error: Error | undefined) => {
        if (finished) return;
        finished = true;
        res.off('close', onClientClose);
        clearTimeout(slowReader);
        if (!error && !relayRefused) {
          resolve(undefined);
          return;
        }
        const unreachable = error instanceof ReplicaUnreachable || relayRefused;
        resolve({
          error:
            error ??
            new ReplicaUnreachable(
              `replica ${endpoint.taskId} on node ${endpoint.nodeId} did not take the connection`,
            ),
          cause: causeOf(
            (error as { code?: string } | undefined)?.code,
            error instanceof ReplicaUnreachable,
            relayRefused,
          ),
          unreachable,
        });
      };
      this.pools.poolFor(endpoint, target).dispatch(
        {
          path,
          method: req.method as Dispatcher.HttpMethod,
          headers,
          body: body === null || Buffer.isBuffer(body) ? body : Readable.from(body),
        },
        {
          onConnect: (abort) => {
            abortRequest = abort;
            if (clientLeft) abort();
          },
          onHeaders: (statusCode, raw, resume, statusText) => {
            const answer = answerOf(raw);
            if (statusCode < 200) return true;
            if (answer === RELAY_REFUSED) {
              // The replica's node could not reach it: as good as a failed connect.
              relayRefused = true;
              return true;
            }
            if (answer.replicaCloses) this.pools.replicaCloses(endpoint, target);
            // HTTP/2 has no reason phrase (Node warns of one).
            if (req.httpVersionMajor >= 2) res.writeHead(statusCode, answer.fields);
            else res.writeHead(statusCode, statusText, answer.fields);
            res.on('drain', () => {
              clearTimeout(slowReader);
              resume();
            });
            return true;
          },
          onData: (chunk) => {
            if (relayRefused || res.write(chunk)) return true;
            // The client is slow to take the answer: it has the send timeout to take some.
            clearTimeout(slowReader);
            slowReader = setTimeout(() => res.destroy(), this.options.limits.sendTimeoutMs);
            return false;
          },
          onComplete: () => {
            if (!relayRefused) res.end();
            settle(undefined);
          },
          onError: (error) => settle(error),
          onUpgrade: () => settle(new Error('an upgrade answer to a plain request')),
        },
      );
    });
  }

  /**
   * Answers a request no replica answered, and says why in the log (once a second a service),
   * unless its client left first (its request was given up: nobody was refused).
   */
  private refuseFailed(res: ServerResponse, route: HttpRoute, refusal: Refusal): void {
    if (!res.destroyed)
      this.replicaWarnings.warn(
        route.service.id,
        { service: route.service.id, status: refusal.status, reason: refusal.message },
        'a request failed: no replica answered it',
      );
    this.refuse(res, refusal);
  }

  /**
   * Answers the refusal; `close`: the connection goes too (its request was not read whole). In
   * HTTP/2 only the request's stream goes, which its answer ends (Connection is not HTTP/2's).
   */
  private refuse(res: ServerResponse, refusal: Refusal, closeConnection = false): void {
    const close = closeConnection && res.req.httpVersionMajor < 2;
    const body = `${refusal.message}\n`;
    res.writeHead(refusal.status, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      ...(refusal.status === 503 ? { 'retry-after': '1' } : {}),
      ...(close ? { connection: 'close' } : {}),
    });
    res.end(body, () => {
      if (close) res.socket?.destroy();
    });
  }
}

/** A body already read in part, then the rest from the client, each wait at most `idleMs`. */
async function* streamed(
  head: Buffer[],
  req: IncomingMessage,
  idleMs: number,
): AsyncGenerator<Buffer> {
  yield* head;
  const rest = req[Symbol.asyncIterator]();
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const silent = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`no request body for ${idleMs / 1000} s`));
      }, idleMs);
    });
    const next = await Promise.race([rest.next(), silent]).finally(() => clearTimeout(timer));
    if (next.done) return;
    yield next.value as Buffer;
  }
}

/** What answerOf answers for a relay's "its replica did not take the connection". */
const RELAY_REFUSED = Symbol('relay refused');

/**
 * An answer's raw header buffers as the flat list writeHead takes, without the hop-by-hop
 * fields, and whether the replica closes its connection after it (`Connection: close`);
 * RELAY_REFUSED when they carry the relay's mark.
 */
function answerOf(
  raw: Buffer[] | string[] | null,
): { fields: string[]; replicaCloses: boolean } | typeof RELAY_REFUSED {
  const flat = (raw ?? []).map((value) => value.toString('latin1'));
  let replicaCloses = false;
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    if (name === RELAY_UNREACHABLE_HEADER) return RELAY_REFUSED;
    if (name === 'connection' && /(^|,)\s*close\s*(,|$)/i.test(flat[i + 1] as string))
      replicaCloses = true;
  }
  return { fields: withoutHopByHop(flat), replicaCloses };
}

/** Whether the client left already: HTTP/1.1's response destroyed, or HTTP/2's stream. */
function clientGone(res: ServerResponse): boolean {
  const stream = (res as unknown as { stream?: { destroyed: boolean } }).stream;
  return res.destroyed || stream?.destroyed === true;
}

function hasBody(req: IncomingMessage): boolean {
  return (
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
  );
}

/** A whole HTTP/1.1 response, for a connection that is not (or no longer) a ServerResponse. */
function rawResponse(status: number, message: string): string {
  const body = `${message}\n`;
  const reason =
    { 404: 'Not Found', 502: 'Bad Gateway', 503: 'Service Unavailable' }[status] ?? 'Error';
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
