import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { TaskStatus } from '../../mesh/api/tasks.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';

/**
 * What a node tells the cluster about its tasks: each status is proposed through the leader and
 * proposed again (on the next flush) until the replicated state holds it, one write in flight
 * per task; a newer one waits for it, then goes at once.
 */
export class StatusReporter {
  /** What this node wants the cluster to know about each task, until the state says it. */
  private readonly pending = new Map<string, TaskStatus>();
  private readonly sending = new Set<string>();

  constructor(
    private readonly nodeId: string,
    private readonly state: ClusterState,
    private readonly propose: (command: unknown) => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  /** What this node last said about the task, or else what the cluster holds. */
  latest(taskId: string): TaskStatus | undefined {
    return this.pending.get(taskId) ?? this.state.get('statuses', taskId)?.value;
  }

  /** A change to what is known of a task: `since` moves only when the state does. */
  report(taskId: string, change: Partial<TaskStatus>, restarts: number | undefined): void {
    const before = this.latest(taskId);
    const state = change.state ?? before?.state ?? 'starting';
    const status: TaskStatus = {
      nodeId: this.nodeId,
      state,
      reason: 'reason' in change ? change.reason : before?.reason,
      // How its process last ended: kept through a restart, and once it is stopped for good.
      exitCode: change.exitCode ?? before?.exitCode,
      restarts: restarts ?? before?.restarts ?? 0,
      since: before?.state === state ? before.since : new Date().toISOString(),
      ports: change.ports ?? (state === 'running' ? (before?.ports ?? []) : []),
      address: change.address ?? (state === 'running' ? before?.address : undefined),
      // Kept through a restart: the service address keeps answering on them meanwhile.
      exposed: change.exposed ?? before?.exposed,
      listening: change.listening ?? before?.listening,
      kept: change.kept ?? before?.kept,
    };
    // Readiness belongs to a running task: it starts not ready, and keeps what it was told since.
    if (state === 'running') {
      const was = before?.state === 'running' ? before : undefined;
      status.ready = change.ready ?? was?.ready ?? false;
      const probe = 'probe' in change ? change.probe : was?.probe;
      if (probe !== undefined) status.probe = probe;
      if (change.neverReady ?? was?.neverReady) status.neverReady = true;
      if (status.ready) delete status.neverReady;
    }
    if (status.address === undefined) delete status.address;
    if (status.exposed === undefined) delete status.exposed;
    if (status.listening === undefined) delete status.listening;
    if (status.reason === undefined) delete status.reason;
    if (status.exitCode === undefined) delete status.exitCode;
    if (!status.kept) delete status.kept;
    this.pending.set(taskId, status);
    this.flush();
  }

  flush(): void {
    for (const [taskId, status] of this.pending) {
      const known = this.state.get('statuses', taskId)?.value;
      if (!this.state.get('tasks', taskId) || isDeepStrictEqual(known, status)) {
        // Known to the cluster, or the task is forgotten: nothing left to tell.
        this.pending.delete(taskId);
        continue;
      }
      if (this.sending.has(taskId)) continue;
      this.sending.add(taskId);
      this.propose({ op: 'put', kind: 'statuses', id: taskId, value: status })
        .catch((error: Error) =>
          this.log.debug(
            { task: taskId, reason: error.message },
            'task status not reported yet; will retry',
          ),
        )
        .finally(() => {
          this.sending.delete(taskId);
          // A newer report made while this one was in flight (ready, after running) goes now,
          // not at the next resync two seconds on.
          const next = this.pending.get(taskId);
          if (next && next !== status) this.flush();
        });
    }
  }
}
