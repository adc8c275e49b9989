/**
 * Bounded HTTP load for tests and benchmarks that change a cluster under traffic: a few
 * keep-alive clients send requests one after another until told to stop, or until the request
 * or time bound is reached, whichever comes first.
 */
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LoadTarget {
  host: string;
  port: number;
  /** The Host header: which service the ingress routes to. */
  hostHeader: string;
  path?: string;
  /** The client's own address (a loopback address of the test's block). */
  localAddress?: string;
}

export interface LoadBounds {
  clients: number;
  maxRequests: number;
  maxMs: number;
  /** Each client waits this long after each answer (a trickle); unset: none. */
  pauseMs?: number;
}

export interface LoadResult {
  requests: number;
  /** Answers other than 2xx and connection errors. */
  failed: number;
  /** The first few failures, as `status body` or the error. */
  failures: string[];
  /** What answered, by body (the version a backend reports). */
  bodies: Record<string, number>;
  p99Ms: number;
}

export interface Load {
  /** Stops sending; resolves once every client's last request is answered. */
  stop(): Promise<LoadResult>;
}

/** One request to the target (through the agent's pool, or a connection of its own). */
export function requestOnce(
  target: LoadTarget,
  agent?: Agent,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.host,
        port: target.port,
        path: target.path ?? '/',
        headers: { host: target.hostHeader },
        localAddress: target.localAddress,
        agent,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

/** Starts the load; it runs until stop(), maxRequests or maxMs. */
export function startLoad(target: LoadTarget, bounds: LoadBounds): Load {
  const agent = new Agent({ keepAlive: true, maxSockets: bounds.clients });
  const deadline = Date.now() + bounds.maxMs;
  const latencies: number[] = [];
  const result: LoadResult = { requests: 0, failed: 0, failures: [], bodies: {}, p99Ms: 0 };
  let stopped = false;
  const fail = (what: string) => {
    result.failed++;
    if (result.failures.length < 10) result.failures.push(what);
  };
  const client = async () => {
    while (!stopped && result.requests < bounds.maxRequests && Date.now() < deadline) {
      result.requests++;
      const started = performance.now();
      try {
        const { status, body } = await requestOnce(target, agent);
        latencies.push(performance.now() - started);
        if (status < 200 || status >= 300) fail(`${status} ${body.slice(0, 200)}`);
        else result.bodies[body] = (result.bodies[body] ?? 0) + 1;
      } catch (error) {
        fail((error as Error).message);
      }
      if (bounds.pauseMs) await sleep(bounds.pauseMs);
    }
  };
  const clients = Array.from({ length: bounds.clients }, client);
  return {
    async stop() {
      stopped = true;
      await Promise.all(clients);
      agent.destroy();
      latencies.sort((a, b) => a - b);
      const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))];
      result.p99Ms = Math.round((p99 ?? 0) * 100) / 100;
      return result;
    },
  };
}
