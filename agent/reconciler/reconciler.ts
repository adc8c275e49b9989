import type { Logger } from 'pino';
import type { ServiceRecord } from '../../mesh/api/services.js';
import { FINAL_STATES, type TaskRecord, type TaskStatus } from '../../mesh/api/tasks.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Runtime, TaskExit, TaskObservation, TaskSpec } from '../runtime/runtime.js';
import { StatusReporter } from './reporter.js';
import { afterExit } from './restart.js';

// Containers can change without the state changing (an engine restart, a missed event).
const RESYNC_MS = 2000;

export interface ReconcilerOptions {
  nodeId: string;
  state: ClusterState;
  /** Replicates a write through the leader. */
  propose: (command: unknown) => Promise<unknown>;
  docker: Runtime | undefined;
  /** Why there is no Docker runtime on this node, for the tasks that need one. */
  dockerMissing?: string;
  process: Runtime;
  /** Resolves once this replica holds every write the cluster acknowledged (a ReadIndex read). */
  caughtUp: () => Promise<void>;
  log: Logger;
}

interface Local {
  /** Times (ms) of this task's restarts, for restart_policy.max_attempts within window. */
  restarts: number[];
  timer?: NodeJS.Timeout;
}

/**
 * Every node's half of orchestration: makes the containers (or processes) on this node match the
 * tasks the leader assigned to it, applies restart policies, removes what it should no longer run,
 * and reports each task's state back through the replicated state.
 */
export class Reconciler {
  private readonly local = new Map<string, Local>();
  /** Per task, the operations in flight, run one after another. */
  private readonly queues = new Map<string, Promise<void>>();
  /** Tasks this agent is stopping: their exits are expected, not crashes. */
  private readonly stopping = new Set<string>();
  /** Tasks whose container this agent started and has not removed since. */
  private readonly started = new Set<string>();
  private readonly status: StatusReporter;
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private scheduled = false;
  /**
   * After a restart the replica may be far behind (tasks long moved elsewhere): nothing is
   * started or removed until it caught up with the leader once. Until then, what runs keeps running.
   */
  private current = false;
  private stopped = false;

  constructor(private readonly options: ReconcilerOptions) {
    this.status = new StatusReporter(options.nodeId, options.state, options.propose, options.log);
  }

  async start(): Promise<void> {
    // An event may be about a container already replaced (one this agent stopped for a
    // restart): it only prompts a fresh look at the task's current container, in its queue.
    const watch = (runtime: Runtime) =>
      runtime.onChange((taskId) => {
        if (this.current && !this.stopping.has(taskId))
          this.enqueue(taskId, () => this.check(taskId, runtime));
      });
    const { docker, process } = this.options;
    await Promise.all([docker && watch(docker), watch(process)]);
    // Only changes that concern this node: a deploy elsewhere must not make it list its containers.
    this.unwatch = this.options.state.watch(({ kind, object }) => {
      const task = kind === 'tasks' ? (object?.value as TaskRecord | undefined) : undefined;
      if (
        kind === 'services' ||
        (kind === 'tasks' && (!task || task.nodeId === this.options.nodeId)) ||
        (kind === 'statuses' && this.anyWaiting())
      )
        this.poke();
    });
    this.timer = setInterval(() => this.poke(), RESYNC_MS);
    this.catchUp();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.unwatch?.();
    for (const local of this.local.values()) clearTimeout(local.timer);
  }

  /** Output of one of this node's tasks, for `mesh logs`. */
  logs(taskId: string, cursor: string | undefined, tail: number) {
    const task = this.options.state.get<TaskRecord>('tasks', taskId)?.value;
    const runtime = task && this.runtimeOf(this.serviceOf(task));
    return runtime ? runtime.logs(taskId, cursor, tail) : { lines: [], cursor: cursor ?? '0' };
  }

  private catchUp(): void {
    this.options.caughtUp().then(
      () => {
        this.current = true;
        this.options.log.info('replica caught up with the leader: reconciling tasks');
        this.poke();
      },
      (error: Error) => {
        if (this.stopped) return;
        this.options.log.info(
          { reason: error.message },
          'replica not confirmed current yet; tasks left as they are until it is',
        );
        setTimeout(() => this.catchUp(), 1000).unref();
      },
    );
  }

  private poke(): void {
    if (this.scheduled || !this.current) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.round().catch((error: Error) =>
        this.options.log.warn({ reason: error.message }, 'reconcile round failed'),
      );
    });
  }

  private mine(): TaskRecord[] {
    return this.options.state
      .list<TaskRecord>('tasks')
      .map((t) => t.value)
      .filter((t) => t.nodeId === this.options.nodeId);
  }

  private serviceOf(task: TaskRecord): ServiceRecord | undefined {
    return this.options.state.get<ServiceRecord>('services', task.serviceId)?.value;
  }

  private runtimeOf(service: ServiceRecord | undefined): Runtime | undefined {
    return service?.runtime === 'process' ? this.options.process : this.options.docker;
  }

  private statusOf(taskId: string): TaskStatus | undefined {
    return this.options.state.get<TaskStatus>('statuses', taskId)?.value;
  }

  private async observed(): Promise<Map<string, { runtime: Runtime; seen: TaskObservation }>> {
    const found = new Map<string, { runtime: Runtime; seen: TaskObservation }>();
    for (const runtime of [this.options.docker, this.options.process]) {
      if (!runtime) continue;
      for (const seen of await runtime.list()) found.set(seen.taskId, { runtime, seen });
    }
    return found;
  }

  /**
   * Compares the tasks with what the runtimes run. What it sees may be stale by the time it acts
   * (the listing takes a while; a start may finish meanwhile), so every action it queues looks at
   * the task's container again, in the task's queue, before doing anything.
   */
  private async round(): Promise<void> {
    const tasks = this.mine();
    const observed = await this.observed();
    const wanted = new Set(tasks.map((t) => t.id));
    for (const [taskId, { runtime }] of observed) {
      if (wanted.has(taskId) || this.queues.has(taskId)) continue;
      this.enqueue(taskId, async () => {
        this.options.log.info({ task: taskId }, 'removing a task this node no longer runs');
        await this.stopTask(runtime, taskId, 10_000);
      });
    }
    for (const task of tasks) {
      if (this.queues.has(task.id)) continue;
      const here = observed.get(task.id);
      const status = this.status.latest(task.id);
      if (task.desired === 'shutdown') {
        if (here) this.enqueue(task.id, () => this.shutdown(task, here.runtime));
        else if (!status || !FINAL_STATES.has(status.state))
          this.report(task.id, { state: 'shutdown', reason: task.reason });
        continue;
      }
      if (this.local.get(task.id)?.timer) continue; // a restart is already waiting out its delay
      if (!here) {
        if (!status || !FINAL_STATES.has(status.state)) this.enqueue(task.id, () => this.run(task));
      } else if (here.seen.state !== 'running' && !FINAL_STATES.has(status?.state ?? 'starting')) {
        // It ended while nobody was watching (the agent was down, or an event was missed).
        this.enqueue(task.id, () => this.check(task.id, here.runtime));
      } else if (
        here.seen.state === 'running' &&
        (status?.state !== 'running' || here.seen.health?.status === 'unhealthy')
      ) {
        this.enqueue(task.id, () => this.check(task.id, here.runtime));
      }
    }
    this.status.flush();
  }

  private enqueue(taskId: string, work: () => Promise<void>): void {
    const previous = this.queues.get(taskId) ?? Promise.resolve();
    const next = previous
      .then(work)
      .catch((error: Error) =>
        this.options.log.warn({ task: taskId, reason: error.message }, 'task operation failed'),
      )
      .finally(() => {
        if (this.queues.get(taskId) === next) this.queues.delete(taskId);
      });
    this.queues.set(taskId, next);
  }

  /** Starts a task's container, once the services it depends on run somewhere. */
  private async run(task: TaskRecord): Promise<void> {
    const service = this.serviceOf(task);
    if (!service) return;
    const runtime = this.runtimeOf(service);
    if (!runtime) {
      this.local.set(task.id, { restarts: [] });
      this.report(task.id, { state: 'failed', reason: this.options.dockerMissing });
      return;
    }
    const waitingFor = service.dependsOn.filter((name) => !this.anyRunning(service.stack, name));
    if (waitingFor.length > 0) {
      this.report(task.id, {
        state: 'waiting',
        reason: `waiting for ${waitingFor.join(', ')} to run (depends_on)`,
      });
      return;
    }
    // Started meanwhile (a round acted on an older listing), unless removed behind our back since.
    if (this.started.has(task.id) && (await runtime.inspect(task.id))) return;
    const local = this.local.get(task.id) ?? { restarts: [] };
    this.local.set(task.id, local);
    this.report(task.id, { state: 'starting', reason: undefined });
    try {
      const seen = await runtime.start(taskSpec(task, service));
      this.started.add(task.id);
      this.settle(seen);
      this.options.log.info({ task: task.id, ports: seen.ports }, 'task started');
    } catch (error) {
      // Cannot even start (no image, a bad command): restarting is what the policy decides.
      this.options.log.warn(
        { task: task.id, reason: (error as Error).message },
        'task not started',
      );
      this.exited({ taskId: task.id, exitCode: -1, reason: (error as Error).message });
    }
  }

  /** Whether a task here waits for its dependencies: their statuses are then worth a look. */
  private anyWaiting(): boolean {
    return this.mine().some((t) => this.status.latest(t.id)?.state === 'waiting');
  }

  private anyRunning(stack: string, service: string): boolean {
    const id = `${stack}.${service}`;
    return this.options.state
      .list<TaskRecord>('tasks')
      .some((t) => t.value.serviceId === id && this.statusOf(t.id)?.state === 'running');
  }

  /**
   * A running task is running once its health check (if it has one) passes; a failing one is
   * treated as a crash: its restart policy decides.
   */
  private settle(seen: TaskObservation): void {
    const { taskId, ports, health } = seen;
    if (health?.status === 'unhealthy') {
      this.exited({ taskId, exitCode: -1, reason: `health check failing (${health.detail})` });
    } else if (health?.status === 'starting') {
      this.report(taskId, { state: 'starting', reason: 'waiting for its health check', ports });
    } else {
      this.report(taskId, { state: 'running', reason: undefined, ports });
    }
  }

  /** Looks at the task's container now: running (and how healthy), or ended. */
  private async check(taskId: string, runtime: Runtime): Promise<void> {
    const seen = await runtime.inspect(taskId);
    if (!seen) return; // removed: the next round starts it again if it should run
    if (seen.state === 'running') this.settle(seen);
    else if (!FINAL_STATES.has(this.status.latest(taskId)?.state ?? 'starting'))
      this.exited({ taskId, exitCode: seen.exitCode ?? -1, reason: seen.reason ?? 'ended' });
  }

  private async shutdown(task: TaskRecord, runtime: Runtime): Promise<void> {
    if (!(await runtime.inspect(task.id))) return; // already gone: the next round reports it
    const service = this.serviceOf(task);
    await this.stopTask(runtime, task.id, service?.stopGracePeriodMs ?? 10_000);
    clearTimeout(this.local.get(task.id)?.timer);
    this.local.delete(task.id);
    this.report(task.id, { state: 'shutdown', reason: task.reason });
    this.options.log.info({ task: task.id, reason: task.reason }, 'task shut down');
  }

  private async stopTask(runtime: Runtime, taskId: string, graceMs: number): Promise<void> {
    this.stopping.add(taskId);
    try {
      await runtime.remove(taskId, graceMs);
      this.started.delete(taskId);
    } finally {
      this.stopping.delete(taskId);
    }
  }

  /** A task's process ended on its own: its restart policy decides what happens next. */
  private exited(exit: TaskExit): void {
    // Before catching up, the first round after it looks at every task anyway.
    if (!this.current || this.stopping.has(exit.taskId)) return;
    const task = this.options.state.get<TaskRecord>('tasks', exit.taskId)?.value;
    const service = task && this.serviceOf(task);
    if (!task || !service || task.desired !== 'running' || task.nodeId !== this.options.nodeId)
      return;
    const local = this.local.get(task.id) ?? { restarts: [] };
    this.local.set(task.id, local);
    if (local.timer) return;
    const now = Date.now();
    const next = afterExit(service.restartPolicy, exit.exitCode, exit.reason, local.restarts, now);
    this.options.log.info({ task: task.id, exitCode: exit.exitCode, ...next }, 'task ended');
    if (!next.restart) {
      this.report(task.id, { state: next.state, reason: next.reason, exitCode: exit.exitCode });
      return;
    }
    this.report(task.id, { state: 'restarting', reason: next.reason, exitCode: exit.exitCode });
    local.timer = setTimeout(() => {
      local.timer = undefined;
      local.restarts.push(Date.now());
      const current = this.options.state.get<TaskRecord>('tasks', task.id)?.value;
      if (current?.desired !== 'running') return;
      const runtime = this.runtimeOf(service);
      this.enqueue(task.id, async () => {
        if (runtime) await this.stopTask(runtime, task.id, 0);
        await this.run(current);
      });
    }, next.delayMs);
  }

  private report(taskId: string, change: Partial<TaskStatus>): void {
    this.status.report(taskId, change, this.local.get(taskId)?.restarts.length);
  }
}

function taskSpec(task: TaskRecord, service: ServiceRecord): TaskSpec {
  return {
    taskId: task.id,
    stack: service.stack,
    service: service.name,
    image: service.image,
    command: service.command,
    entrypoint: service.entrypoint,
    env: service.env,
    ports: service.ports.map((p) => ({ target: p.target, protocol: p.protocol })),
    labels: service.labels,
    resources: service.resources.limits,
    stopGracePeriodMs: service.stopGracePeriodMs,
    volumes: service.volumes,
    healthcheck: service.healthcheck,
  };
}
