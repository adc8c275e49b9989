import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { dnsAddress, type NetworkSettings, networksOf } from '../../mesh/api/network.js';
import type { RegistryAuth } from '../../mesh/api/registries.js';
import { definitionFor, type ServiceRecord } from '../../mesh/api/services.js';
import { FINAL_STATES, type TaskRecord, type TaskStatus } from '../../mesh/api/tasks.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Lagging } from '../cluster/routing-views.js';
import { ReadinessProbes } from '../health/probes.js';
import type { Runtime, TaskExit, TaskObservation, TaskSpec } from '../runtime/runtime.js';
import type { Runtimes } from '../runtime/runtimes.js';
import type { TaskFiles } from '../secrets/files.js';
import {
  type Action,
  type NodeView,
  type Observed,
  reconcile,
  runningVerdict,
  stoppedStatus,
} from './plan.js';
import { StatusReporter } from './reporter.js';
import { afterExit } from './restart.js';

// Containers can change without the state changing (an engine restart, a missed event).
const RESYNC_MS = 2000;
// How long a task that is no longer this node's gets to stop.
const ORPHAN_GRACE_MS = 10_000;
// A task told to stop, once out of every node's routing, is given this for requests in flight.
const IN_FLIGHT_MS = 1000;
// While at-most-once tasks run here, how often the leader's silence is looked at.
const CUT_OFF_CHECK_MS = 250;

export interface ReconcilerOptions {
  nodeId: string;
  state: ClusterState;
  /** Replicates a write through the leader. */
  propose: (command: unknown) => Promise<unknown>;
  runtimes: Runtimes;
  /** Resolves once this replica holds every write the cluster acknowledged (a ReadIndex read). */
  caughtUp: () => Promise<void>;
  /** How long since a leader was last heard (0 on the leader). */
  leaderSilenceMs: () => number;
  /**
   * Past this much silence, at-most-once tasks stop here. Shorter than the leader's reschedule
   * grace, which only starts once gossip suspects this node: they stop before any replacement.
   */
  cutOffAfterMs: number;
  /**
   * Resolves once every node routes as of state index `index`, or once `maxWaitMs` ran out: the
   * nodes that did not say so, each with why (RoutingViews).
   */
  routesAsOf: (index: number, maxWaitMs: number) => Promise<Lagging[]>;
  /** Secrets and configs as files for the tasks that use them. */
  files?: TaskFiles;
  /** The login to pull a Docker task's image with, when its registry has one. */
  registryAuth?: (task: TaskRecord, service: ServiceRecord) => Promise<RegistryAuth | undefined>;
  log: Logger;
}

interface Local {
  /** Times (ms) of this task's restarts, for restart_policy.max_attempts within window. */
  restarts: number[];
  /** While it waits out its restart delay: when it may start again (ms). */
  restartAt?: number;
  timer?: NodeJS.Timeout;
  /** How it last ended on its own (while it waits to start again). */
  lastExit?: string;
}

/**
 * Every node's half of orchestration: makes the containers (or processes) on this node match the
 * tasks the leader assigned to it, applies restart policies, removes what it should no longer run,
 * and reports each task's state back through the replicated state. What to do is decided by the
 * pure plan (plan.ts); this shell gathers what the plan looks at and carries out its actions.
 */
export class Reconciler {
  private readonly local = new Map<string, Local>();
  /** Per task, the operations in flight, run one after another. */
  private readonly queues = new Map<string, Promise<void>>();
  /** Tasks this agent is stopping: their exits are expected, not crashes. */
  private readonly stopping = new Set<string>();
  /** When each task's container was last looked at (ms), for the plan's LOOK_AGAIN_MS. */
  private readonly lookedAt = new Map<string, number>();
  /** Tasks whose container this agent started and has not removed since. */
  private readonly started = new Set<string>();
  private readonly status: StatusReporter;
  private readonly probes: ReadinessProbes;
  private timer: NodeJS.Timeout | undefined;
  private cutOffCheck: NodeJS.Timeout | undefined;
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
    this.probes = new ReadinessProbes((taskId, readiness) => {
      // Told after the task stopped running (a probe in flight): nothing to say any more.
      if (this.status.latest(taskId)?.state !== 'running') return;
      if (readiness.ready !== this.status.latest(taskId)?.ready)
        this.options.log.info(
          { task: taskId, probe: readiness.detail },
          readiness.ready ? 'task ready' : 'task not ready',
        );
      this.report(taskId, {
        ready: readiness.ready,
        probe: readiness.detail,
        neverReady: readiness.neverReady,
      });
    });
  }

  async start(): Promise<void> {
    const { runtimes, log } = this.options;
    // An engine that answers only now: its tasks (placed here once the node offers it) start.
    // Told before the runtimes are listed, so that one added meanwhile is followed all the same.
    runtimes.onAdded((kind, runtime) => {
      this.follow(runtime).then(
        () => this.poke(),
        (error: Error) =>
          log.warn({ runtime: kind, reason: error.message }, 'runtime events not followed'),
      );
    });
    await Promise.all(runtimes.entries().map(([, runtime]) => this.follow(runtime)));
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

  /**
   * A runtime's events prompt a fresh look at the task's current container, in its queue: an
   * event may be about a container already replaced (one this agent stopped for a restart).
   */
  private follow(runtime: Runtime): Promise<void> {
    return runtime.onChange((taskId) => {
      if (this.current && !this.stopping.has(taskId))
        this.enqueue(taskId, () => this.inspect(taskId, runtime));
    });
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.cutOffCheck);
    this.unwatch?.();
    this.probes.stop();
    for (const local of this.local.values()) clearTimeout(local.timer);
  }

  /**
   * This node leaves the cluster: its tasks are started elsewhere, so it stops every one it runs,
   * in every runtime, each within its service's grace period. Nothing is left running orphaned.
   */
  async removeAll(): Promise<void> {
    this.stop();
    const { runtimes, state, log } = this.options;
    const stop = async (runtime: Runtime, taskId: string) => {
      const task = state.get('tasks', taskId)?.value;
      log.info({ task: taskId }, 'stopping a task: this node is leaving');
      await this.stopTask(runtime, taskId, this.graceOf(task, ORPHAN_GRACE_MS));
    };
    const listed = await Promise.all(
      runtimes.entries().map(async ([, runtime]) => ({ runtime, tasks: await runtime.list() })),
    );
    await Promise.all(
      listed.flatMap(({ runtime, tasks }) => tasks.map((t) => stop(runtime, t.taskId))),
    );
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
        this.options.log.warn({ err: error }, 'reconcile round failed'),
      );
    });
  }

  private cutOff(): boolean {
    return this.options.leaderSilenceMs() > this.options.cutOffAfterMs;
  }

  private mine(): TaskRecord[] {
    return this.options.state
      .list('tasks')
      .map((t) => t.value)
      .filter((t) => t.nodeId === this.options.nodeId);
  }

  private serviceOf(task: TaskRecord): ServiceRecord | undefined {
    return this.options.state.get('services', task.serviceId)?.value;
  }

  /**
   * The definition the task runs: its own version's. A task being replaced keeps being judged by
   * its own readiness probe (or none), not by the update's, until it stops.
   */
  private definitionOf(task: TaskRecord): ServiceRecord | undefined {
    const service = this.serviceOf(task);
    return service && (definitionFor(task, service) ?? service);
  }

  private runtime(kind: ServiceRecord['runtime']): Runtime {
    const runtime = this.options.runtimes.get(kind);
    if (!runtime) throw new Error(`no ${kind} runtime on this node`);
    return runtime;
  }

  /**
   * Gathers what the plan looks at and carries out its actions. What it sees may be stale by the
   * time it acts (the listing takes a while; a start may finish meanwhile), so every action it
   * queues looks at the task's container again, in the task's queue, before doing anything.
   */
  private async round(): Promise<void> {
    const { state, runtimes } = this.options;
    const tasks = this.mine();
    const observed = new Map<string, Observed>();
    for (const [runtime, instance] of runtimes.entries())
      for (const seen of await instance.list()) observed.set(seen.taskId, { runtime, seen });
    const services = new Map(state.list('services').map((s) => [s.id, s.value]));
    const statuses = new Map<string, TaskStatus>();
    for (const task of tasks) {
      const status = this.status.latest(task.id);
      if (status) statuses.set(task.id, status);
    }
    const restartAt = new Map<string, number>();
    const lastExit = new Map<string, string>();
    for (const [taskId, local] of this.local) {
      if (local.restartAt !== undefined) restartAt.set(taskId, local.restartAt);
      if (local.lastExit !== undefined) lastExit.set(taskId, local.lastExit);
    }
    const view: NodeView = {
      tasks,
      services,
      statuses,
      observed,
      probed: this.probes.watched(),
      lookedAt: this.lookedAt,
      busy: new Set(this.queues.keys()),
      restartAt,
      lastExit,
      runningServices: this.runningServices(),
      missingRuntimes: runtimes.missing,
      cutOff: this.cutOff(),
      now: Date.now(),
    };
    for (const action of reconcile(view)) this.act(action);
    this.status.flush();
    this.watchCutOff(tasks.some((t) => services.get(t.serviceId)?.atMostOnce));
  }

  /**
   * While at-most-once tasks run here, the leader's silence is looked at often, so that they stop
   * soon after this node is cut off; without any, nothing wakes the agent for it.
   */
  private watchCutOff(needed: boolean): void {
    if (needed && !this.cutOffCheck && !this.stopped)
      this.cutOffCheck = setInterval(() => {
        if (this.cutOff()) this.poke();
      }, CUT_OFF_CHECK_MS);
    else if (!needed && this.cutOffCheck) {
      clearInterval(this.cutOffCheck);
      this.cutOffCheck = undefined;
    }
  }

  private act(action: Action): void {
    switch (action.type) {
      case 'remove':
        this.enqueue(action.taskId, async () => {
          // Cut off: it must be gone before the leader may have started a replacement.
          const cutOff = action.because === 'cut-off';
          this.options.log.info(
            { task: action.taskId },
            cutOff
              ? 'stopping a task: cut off from the leader, and its service runs at most once'
              : 'removing a task this node no longer runs',
          );
          const graceMs = cutOff ? this.options.cutOffAfterMs : ORPHAN_GRACE_MS;
          await this.stopTask(this.runtime(action.runtime), action.taskId, graceMs);
        });
        break;
      case 'shutdown':
        this.enqueue(action.task.id, () =>
          this.shutdown(action.task, this.runtime(action.runtime)),
        );
        break;
      case 'start':
        this.enqueue(action.task.id, () => this.run(action.task, action.service));
        break;
      case 'restart':
        this.enqueue(action.taskId, () => this.restart(action.taskId, action.runtime));
        break;
      case 'inspect':
        this.enqueue(action.taskId, () =>
          this.inspect(action.taskId, this.runtime(action.runtime)),
        );
        break;
      case 'report':
        this.report(action.taskId, action.status);
        break;
    }
  }

  private enqueue(taskId: string, work: () => Promise<void>): void {
    const previous = this.queues.get(taskId) ?? Promise.resolve();
    const next = previous
      .then(work)
      .catch((error: Error) =>
        this.options.log.warn({ task: taskId, err: error }, 'task operation failed'),
      )
      .finally(() => {
        if (this.queues.get(taskId) === next) this.queues.delete(taskId);
      });
    this.queues.set(taskId, next);
  }

  /** Starts a task's container. */
  private async run(task: TaskRecord, service: ServiceRecord): Promise<void> {
    const runtime = this.runtime(service.runtime);
    // Started meanwhile (a round acted on an older listing), unless removed behind our back since.
    if (this.started.has(task.id) && (await runtime.inspect(task.id))) return;
    if (!this.local.has(task.id)) this.local.set(task.id, { restarts: [] });
    this.report(task.id, { state: 'starting', reason: undefined });
    try {
      const settings = this.options.state.setting('network')?.value;
      const files = (await this.options.files?.prepare(task, service)) ?? [];
      const registryAuth =
        service.runtime === 'docker' ? await this.options.registryAuth?.(task, service) : undefined;
      const seen = await runtime.start({
        ...taskSpec(task, service, settings),
        files,
        ...(registryAuth ? { registryAuth } : {}),
      });
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

  /** Its restart delay is over: what is left of it goes, and the next round starts it again. */
  private async restart(taskId: string, kind: ServiceRecord['runtime'] | undefined): Promise<void> {
    const local = this.local.get(taskId);
    if (local) {
      local.restartAt = undefined;
      local.restarts.push(Date.now());
    }
    if (kind) await this.stopTask(this.runtime(kind), taskId, 0);
    this.poke();
  }

  /** Whether a task here waits for its dependencies: their statuses are then worth a look. */
  private anyWaiting(): boolean {
    return this.mine().some((t) => this.status.latest(t.id)?.state === 'waiting');
  }

  private runningServices(): Set<string> {
    const { state } = this.options;
    return new Set(
      state
        .list('tasks')
        .filter((t) => state.get('statuses', t.id)?.value.state === 'running')
        .map((t) => t.value.serviceId),
    );
  }

  /** A container seen running: what that means (plan.ts), then the report and the checks it asks. */
  private settle(seen: TaskObservation): void {
    const { taskId } = seen;
    this.lookedAt.set(taskId, Date.now());
    const task = this.options.state.get('tasks', taskId)?.value;
    const verdict = runningVerdict(seen, task && this.definitionOf(task));
    if (verdict.type === 'ended') {
      this.exited({ taskId, exitCode: -1, reason: verdict.reason });
      return;
    }
    this.report(taskId, verdict.status);
    const { check } = verdict;
    if (check?.type === 'probe') this.probes.watch(taskId, check.probe, check.target);
    else if (check?.type === 'unprobeable')
      this.report(taskId, { ready: false, probe: `no address to probe port ${check.port} at` });
    else if (check?.type === 'ports') this.probes.watchPorts(taskId, check.address, check.ports);
  }

  /** Looks at the task's container now: running (and how healthy), or ended. */
  private async inspect(taskId: string, runtime: Runtime): Promise<void> {
    const seen = await runtime.inspect(taskId);
    if (!seen) return; // removed: the next round starts it again if it should run
    if (seen.state === 'running') this.settle(seen);
    else if (!FINAL_STATES.has(this.status.latest(taskId)?.state ?? 'starting'))
      this.exited({ taskId, exitCode: seen.exitCode ?? -1, reason: seen.reason ?? 'ended' });
  }

  /**
   * How long a task may take to stop: its service's stop_grace_period, or, once the service is
   * removed (mesh rm), the one the task was made with.
   */
  private graceOf(task: TaskRecord | undefined, fallbackMs: number): number {
    return (
      (task && this.definitionOf(task)?.stopGracePeriodMs) ?? task?.stopGracePeriodMs ?? fallbackMs
    );
  }

  private async shutdown(task: TaskRecord, runtime: Runtime): Promise<void> {
    const seen = await runtime.inspect(task.id);
    if (!seen) return; // already gone: the next round reports it
    const graceMs = this.graceOf(task, 10_000);
    if (seen.state === 'running') {
      this.stopping.add(task.id);
      await this.drain(task.id, graceMs);
    }
    // Kept, stopped, as the slot's history (its logs readable) until the leader lets it go; a
    // removed service keeps no history: the leader forgets its tasks once nothing is kept.
    const kept = this.serviceOf(task) !== undefined;
    await this.stopTask(runtime, task.id, graceMs, kept ? 'keep' : 'remove');
    const local = this.local.get(task.id);
    clearTimeout(local?.timer);
    this.local.delete(task.id);
    const before = this.status.latest(task.id);
    if (seen.state !== 'running' && before && FINAL_STATES.has(before.state))
      // Ended before it was told to stop (failed, complete): that is how it ended.
      this.report(task.id, { kept });
    else this.report(task.id, { ...stoppedStatus(before, local?.lastExit, task.reason), kept });
    this.options.log.info({ task: task.id, reason: task.reason }, 'task shut down');
  }

  /**
   * Before the signal: the write that told the task to stop took it out of each node's routing as
   * that node applied it. Waits until every node says it has (half the stop grace period at most:
   * a node that cannot answer holds no stop for long), then gives requests in flight a moment.
   */
  private async drain(taskId: string, graceMs: number): Promise<void> {
    const index = this.options.state.appliedIndex;
    const lagging = await this.options.routesAsOf(index, graceMs / 2);
    if (lagging.length > 0)
      this.options.log.warn(
        { task: taskId, index, lagging },
        'stopping a task that some nodes may still route to',
      );
    await sleep(Math.min(IN_FLIGHT_MS, graceMs / 2));
  }

  private async stopTask(
    runtime: Runtime,
    taskId: string,
    graceMs: number,
    what: 'keep' | 'remove' = 'remove',
  ): Promise<void> {
    this.probes.unwatch(taskId);
    this.stopping.add(taskId);
    try {
      if (what === 'keep') await runtime.stop(taskId, graceMs);
      else await runtime.remove(taskId, graceMs);
      this.started.delete(taskId);
      this.lookedAt.delete(taskId);
      await this.options.files?.release(taskId);
    } finally {
      this.stopping.delete(taskId);
    }
  }

  /** A task's process ended on its own: its restart policy decides what happens next. */
  private exited(exit: TaskExit): void {
    // Before catching up, the first round after it looks at every task anyway.
    if (!this.current || this.stopping.has(exit.taskId)) return;
    const task = this.options.state.get('tasks', exit.taskId)?.value;
    const service = task && this.definitionOf(task);
    if (!task || !service || task.desired !== 'running' || task.nodeId !== this.options.nodeId)
      return;
    this.probes.unwatch(task.id);
    const local = this.local.get(task.id) ?? { restarts: [] };
    this.local.set(task.id, local);
    if (local.restartAt !== undefined) return;
    const now = Date.now();
    const next = afterExit(service.restartPolicy, exit.exitCode, exit.reason, local.restarts, now);
    this.options.log.info({ task: task.id, exitCode: exit.exitCode, ...next }, 'task ended');
    if (!next.restart) {
      this.report(task.id, { state: next.state, reason: next.reason, exitCode: exit.exitCode });
      return;
    }
    this.report(task.id, { state: 'restarting', reason: next.reason, exitCode: exit.exitCode });
    local.lastExit = exit.reason;
    local.restartAt = now + next.delayMs;
    this.pokeAt(local);
  }

  /** A round once the restart delay is over (timers may fire a little early: wait out the rest). */
  private pokeAt(local: Local): void {
    const left = (local.restartAt ?? 0) - Date.now();
    if (left <= 0) {
      local.timer = undefined;
      this.poke();
      return;
    }
    local.timer = setTimeout(() => this.pokeAt(local), left);
  }

  private report(taskId: string, change: Partial<TaskStatus>): void {
    this.status.report(taskId, change, this.local.get(taskId)?.restarts.length);
  }
}

function taskSpec(
  task: TaskRecord,
  service: ServiceRecord,
  settings: NetworkSettings | undefined,
): TaskSpec {
  return {
    taskId: task.id,
    stack: service.stack,
    service: service.name,
    image: service.image,
    ...(service.pull ? { pull: service.pull } : {}),
    command: service.command,
    entrypoint: service.entrypoint,
    env: service.env,
    ports: service.ports.map((p) => ({
      target: p.target,
      protocol: p.protocol,
      hostPort: p.mode === 'host' ? p.published : undefined,
      hostIp: p.mode === 'host' ? p.hostIp : undefined,
    })),
    network: settings && {
      keys: networksOf(service),
      bridgeRange: settings.bridgeRange,
      dnsServer: dnsAddress(settings.serviceRange),
      search: `${service.stack}.mesh`,
    },
    labels: service.labels,
    resources: service.resources.limits,
    stopGracePeriodMs: service.stopGracePeriodMs,
    volumes: service.volumes,
    namedVolumes: service.namedVolumes,
    healthcheck: service.healthcheck,
    container: service.container,
  };
}
