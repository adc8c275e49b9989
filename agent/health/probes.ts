import { request } from 'node:http';
import { connect } from 'node:net';
import type { ReadinessProbe } from '../../mesh/api/services.js';
import { afterProbe, NOT_YET_PROBED, type Readiness } from './readiness.js';

/** Where a task's node reaches the probe's port. */
export interface ProbeTarget {
  host: string;
  port: number;
}

type Outcome = { ok: boolean; detail: string };

interface Watch {
  probe: ReadinessProbe;
  /** Where it checks, in words: a watch of the same task at the same place goes on as it is. */
  place: string;
  check: () => Promise<Outcome>;
  /** Checked until ready only, then left as it is. */
  untilReady: boolean;
  startedAt: number;
  /** Checks made so far. */
  checks: number;
  readiness: Readiness;
  timer?: NodeJS.Timeout;
  stopped: boolean;
}

/**
 * The check of a replica with neither a healthcheck nor an x-mesh probe: ready once it accepts a
 * TCP connection on each port it is known to serve, as a Consul TCP check would. A port that
 * never opens makes it never ready past a minute (a rollout then stops, as for a failing
 * healthcheck). Checked until ready only: every connection may cost the app a line in its log
 * (postgres: "incomplete startup packet"). `port` is unused: the ports are the task's.
 */
export const PORTS_CHECK: ReadinessProbe = {
  kind: 'tcp',
  port: 0,
  intervalMs: 1000,
  timeoutMs: 1000,
  failureThreshold: 3,
  successThreshold: 1,
  startPeriodMs: 60_000,
};

/**
 * Runs the readiness probes of the tasks on this node, one timer per task, and says when a
 * task's readiness changes. Only the outcome's words and the two flags are told, so a steady
 * task causes no writes.
 */
export class ReadinessProbes {
  private readonly watches = new Map<string, Watch>();

  constructor(private readonly listener: (taskId: string, readiness: Readiness) => void) {}

  /** Starts probing a task with its x-mesh probe, unless it is probed already at the same place. */
  watch(taskId: string, probe: ReadinessProbe, target: ProbeTarget): void {
    this.start(taskId, probe, `${target.host}:${target.port}`, false, () =>
      probeOnce(probe, target),
    );
  }

  /** Starts checking that a task accepts connections on each of its ports (PORTS_CHECK). */
  watchPorts(taskId: string, host: string, ports: readonly number[]): void {
    this.start(taskId, PORTS_CHECK, `${host}:${ports.join(',')}`, true, () =>
      portsAccept(host, ports, PORTS_CHECK.timeoutMs),
    );
  }

  watched(): ReadonlySet<string> {
    return new Set(this.watches.keys());
  }

  unwatch(taskId: string): void {
    const watch = this.watches.get(taskId);
    if (!watch) return;
    watch.stopped = true;
    clearTimeout(watch.timer);
    this.watches.delete(taskId);
  }

  stop(): void {
    for (const taskId of [...this.watches.keys()]) this.unwatch(taskId);
  }

  private start(
    taskId: string,
    probe: ReadinessProbe,
    place: string,
    untilReady: boolean,
    check: () => Promise<Outcome>,
  ): void {
    if (this.watches.get(taskId)?.place === place) return;
    this.unwatch(taskId);
    const watch: Watch = {
      probe,
      place,
      check,
      untilReady,
      startedAt: Date.now(),
      checks: 0,
      readiness: NOT_YET_PROBED,
      stopped: false,
    };
    this.watches.set(taskId, watch);
    this.run(taskId, watch);
  }

  private run(taskId: string, watch: Watch): void {
    watch.check().then((outcome) => {
      if (watch.stopped) return;
      const before = watch.readiness;
      watch.readiness = afterProbe(before, watch.probe, outcome, Date.now() - watch.startedAt);
      const after = watch.readiness;
      if (
        after.ready !== before.ready ||
        after.neverReady !== before.neverReady ||
        after.detail !== before.detail
      )
        this.listener(taskId, after);
      if (watch.untilReady && after.ready) return;
      watch.checks += 1;
      watch.timer = setTimeout(() => this.run(taskId, watch), nextCheckMs(watch));
    });
  }
}

/** The first wait between two checks of a replica that is starting (see nextCheckMs). */
const FIRST_RECHECK_MS = 100;

/**
 * When to check again. The default check of a replica not ready yet waits 100 ms, then twice as
 * long each time up to its interval: most replicas listen within moments of starting, and a
 * replacement is ready (and takes traffic) that much sooner; one that takes long costs a few
 * checks more. A declared probe keeps its own interval.
 */
export function nextCheckMs(watch: Pick<Watch, 'probe' | 'untilReady' | 'checks'>): number {
  const { intervalMs } = watch.probe;
  if (!watch.untilReady) return intervalMs;
  return Math.min(intervalMs, FIRST_RECHECK_MS * 2 ** (watch.checks - 1));
}

/** Whether the host accepts a TCP connection on each port, in turn; the first that does not says why. */
export async function portsAccept(
  host: string,
  ports: readonly number[],
  timeoutMs: number,
): Promise<Outcome> {
  for (const port of ports) {
    const refused = await tcpRefusal({ host, port }, timeoutMs);
    if (refused !== undefined)
      return { ok: false, detail: `waiting for port ${port} (${refused})` };
  }
  return {
    ok: true,
    detail: `${ports.length === 1 ? 'port' : 'ports'} ${ports.join(', ')} ${ports.length === 1 ? 'accepts' : 'accept'} connections`,
  };
}

/** One probe run: never rejects; the outcome says what happened in words. */
export function probeOnce(probe: ReadinessProbe, target: ProbeTarget): Promise<Outcome> {
  return probe.kind === 'http' ? httpProbe(probe, target) : tcpProbe(probe.timeoutMs, target);
}

function httpProbe(probe: ReadinessProbe, target: ProbeTarget): Promise<Outcome> {
  const path = probe.path ?? '/';
  return new Promise((resolve) => {
    const req = request(
      { host: target.host, port: target.port, path, method: 'GET', agent: false },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 400, detail: `GET ${path}: ${status}` });
      },
    );
    req.setTimeout(probe.timeoutMs, () =>
      req.destroy(new Error(`no answer within ${probe.timeoutMs} ms`)),
    );
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ ok: false, detail: `GET ${path}: ${error.code ?? error.message}` }),
    );
    req.end();
  });
}

async function tcpProbe(timeoutMs: number, target: ProbeTarget): Promise<Outcome> {
  const refused = await tcpRefusal(target, timeoutMs);
  return refused === undefined
    ? { ok: true, detail: `TCP ${target.port}: connected` }
    : { ok: false, detail: `TCP ${target.port}: ${refused}` };
}

/** Why a TCP connection to the target failed, or undefined once one was accepted (and closed). */
function tcpRefusal(target: ProbeTarget, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.host, port: target.port });
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new Error(`no answer within ${timeoutMs} ms`)),
    );
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}
