import { request } from 'node:http';
import { connect } from 'node:net';
import type { ReadinessProbe } from '../../mesh/api/services.js';
import { afterProbe, NOT_YET_PROBED, type Readiness } from './readiness.js';

/** Where a task's node reaches the probe's port. */
export interface ProbeTarget {
  host: string;
  port: number;
}

interface Watch {
  probe: ReadinessProbe;
  target: ProbeTarget;
  startedAt: number;
  readiness: Readiness;
  timer?: NodeJS.Timeout;
  stopped: boolean;
}

/**
 * Runs the readiness probes of the tasks on this node, one timer per task, and says when a
 * task's readiness changes. Only the outcome's words and the two flags are told, so a steady
 * task causes no writes.
 */
export class ReadinessProbes {
  private readonly watches = new Map<string, Watch>();

  constructor(private readonly listener: (taskId: string, readiness: Readiness) => void) {}

  /** Starts probing a task, unless it is probed already (at the same place). */
  watch(taskId: string, probe: ReadinessProbe, target: ProbeTarget): void {
    const existing = this.watches.get(taskId);
    if (existing && existing.target.host === target.host && existing.target.port === target.port)
      return;
    this.unwatch(taskId);
    const watch: Watch = {
      probe,
      target,
      startedAt: Date.now(),
      readiness: NOT_YET_PROBED,
      stopped: false,
    };
    this.watches.set(taskId, watch);
    this.run(taskId, watch);
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

  private run(taskId: string, watch: Watch): void {
    probeOnce(watch.probe, watch.target).then((outcome) => {
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
      watch.timer = setTimeout(() => this.run(taskId, watch), watch.probe.intervalMs);
    });
  }
}

/** One probe run: never rejects; the outcome says what happened in words. */
export function probeOnce(
  probe: ReadinessProbe,
  target: ProbeTarget,
): Promise<{ ok: boolean; detail: string }> {
  return probe.kind === 'http' ? httpProbe(probe, target) : tcpProbe(probe, target);
}

function httpProbe(
  probe: ReadinessProbe,
  target: ProbeTarget,
): Promise<{ ok: boolean; detail: string }> {
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

function tcpProbe(
  probe: ReadinessProbe,
  target: ProbeTarget,
): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.host, port: target.port });
    socket.setTimeout(probe.timeoutMs, () =>
      socket.destroy(new Error(`no answer within ${probe.timeoutMs} ms`)),
    );
    socket.once('connect', () => {
      socket.destroy();
      resolve({ ok: true, detail: `TCP ${target.port}: connected` });
    });
    socket.once('error', (error: NodeJS.ErrnoException) =>
      resolve({ ok: false, detail: `TCP ${target.port}: ${error.code ?? error.message}` }),
    );
  });
}
