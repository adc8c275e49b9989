/**
 * What a client of the HTTP ingress may hold, and for how long: nginx's defaults where it has one
 * (client_header_timeout, client_body_timeout, send_timeout 60 s), so that a slow client costs
 * the node a connection for a minute at most and never holds a replica's.
 */
export interface HttpLimits {
  /** To send a request's headers. */
  headerTimeoutMs: number;
  /** Between two reads of a request's body. */
  bodyTimeoutMs: number;
  /** Between two writes of an answer the client is slow to take. */
  sendTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** A request body up to this is read whole before any replica is asked; a larger one streams. */
  bodyBufferBytes: number;
  /** Connections one client address may hold at once; past that it is answered 429 and closed. */
  connectionsPerClient: number;
  /** Requests one replica is sent at once by this node's ingress; more wait (replica-queue.ts). */
  requestsPerReplica: number;
  /** Requests that may wait for a replica of one service; past that 503 at once. */
  queueLength: number;
  /** How long a request waits for a replica before its 503 (with Retry-After). */
  queueTimeoutMs: number;
}

/** How long a replica may take to start its answer (after that, 504); the body has no limit. */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 300_000;

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headerTimeoutMs: 60_000,
  bodyTimeoutMs: 60_000,
  sendTimeoutMs: 60_000,
  keepAliveTimeoutMs: 75_000,
  bodyBufferBytes: 1024 * 1024,
  connectionsPerClient: 256,
  requestsPerReplica: 128,
  queueLength: 4096,
  queueTimeoutMs: 30_000,
};

/** The keys of `--http-limit KEY=VALUE`, and whether each takes a duration or a count. */
export const HTTP_LIMIT_KEYS: Record<
  string,
  { field: keyof HttpLimits; kind: 'duration' | 'bytes' | 'count' }
> = {
  'header-timeout': { field: 'headerTimeoutMs', kind: 'duration' },
  'body-timeout': { field: 'bodyTimeoutMs', kind: 'duration' },
  'send-timeout': { field: 'sendTimeoutMs', kind: 'duration' },
  'keepalive-timeout': { field: 'keepAliveTimeoutMs', kind: 'duration' },
  'body-buffer': { field: 'bodyBufferBytes', kind: 'bytes' },
  'client-connections': { field: 'connectionsPerClient', kind: 'count' },
  'replica-requests': { field: 'requestsPerReplica', kind: 'count' },
  'queue-length': { field: 'queueLength', kind: 'count' },
  'queue-timeout': { field: 'queueTimeoutMs', kind: 'duration' },
};
