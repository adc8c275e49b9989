import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { DEFAULT_NETWORK_SETTINGS, type NetworkSettings } from '../../mesh/api/network.js';
import type { ServiceRecord } from '../../mesh/api/services.js';
import type { TaskRecord } from '../../mesh/api/tasks.js';
import { Counts } from '../../mesh/counts.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import { RunAgain } from '../../mesh/run-again.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import { DEFAULT_SCHEDULER_OPTIONS, type SchedulerOptions } from '../scheduler/scheduler.js';
import { allocateAddresses } from './addresses.js';
import { type ClusterView, orchestrate } from './plan.js';

// Grace periods and update delays end without any state changing: look again this often.
const TICK_MS = 250;

export function viewOf(state: ClusterState, voters: readonly string[]): ClusterView {
  return {
    services: state.list('services'),
    nodes: state.list('nodes'),
    tasks: state.list('tasks'),
    statuses: new Map(state.list('statuses').map((s) => [s.id, s.value])),
    voters,
    settings: state.setting('network')?.value,
    addresses: new Map(state.list('addresses').map((a) => [a.id, a])),
    volumes: new Map(state.list('volumes').map((v) => [v.id, v.value])),
  };
}

/**
 * Runs on every node, acts only on the leader: whenever the replicated state changes (or a grace
 * period may have ended) it plans and proposes the writes, one batch at a time, so a plan is
 * always made from a state that already holds the previous one.
 */
export class Orchestrator {
  /**
   * Tasks this node, as leader, told to stop: because of their node (it left, is down or is
   * drained: the task is rescheduled) or because of their service (updated, scaled, removed).
   */
  readonly stopped = new Counts<{ cause: 'node' | 'service' }>();
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private readonly rounds = new RunAgain(
    () => this.round(),
    (error) => this.log.warn({ err: error }, 'orchestration round failed; retrying'),
  );

  constructor(
    private readonly raft: RaftNode,
    private readonly state: ClusterState,
    private readonly log: Logger,
    private readonly options: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS,
    /** The network settings this node would write when the cluster has none yet (its `mesh init` flags). */
    private readonly networkSettings: NetworkSettings = DEFAULT_NETWORK_SETTINGS,
  ) {}

  start(): void {
    this.unwatch = this.state.watch((change) => {
      // The autoscaler's bookkeeping changes nothing to plan: its scaling writes the service.
      if (change.kind !== 'secrets' && change.kind !== 'autoscaling') this.poke();
    });
    this.raft.on('leader', this.leadershipChanged);
    this.leadershipChanged();
  }

  stop(): void {
    this.raft.off('leader', this.leadershipChanged);
    clearInterval(this.timer);
    this.timer = undefined;
    this.unwatch?.();
  }

  /** Only the leader orchestrates: the tick runs while this node leads (an idle follower sleeps). */
  private readonly leadershipChanged = (): void => {
    const leads = this.raft.raft.role === 'leader';
    if (leads && !this.timer) {
      this.timer = setInterval(() => this.poke(), TICK_MS);
      this.poke();
    } else if (!leads && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  };

  private poke(): void {
    if (this.raft.raft.role === 'leader') this.rounds.request();
  }

  private async round(): Promise<void> {
    const view = viewOf(this.state, this.raft.membership.voters);
    const writes = [
      ...allocateAddresses(view, this.networkSettings),
      ...orchestrate(view, Date.now(), this.options, newTaskId),
    ];
    if (writes.length === 0) return;
    const outcome = (await this.raft.propose({ op: 'batch', writes })) as {
      ok: boolean;
      reason?: string;
    };
    if (!outcome.ok) {
      // Someone wrote in between (a deploy, a node's report): plan again from the new state.
      this.log.debug({ reason: outcome.reason }, 'orchestration batch refused; planning again');
      this.rounds.request();
      return;
    }
    for (const write of writes) {
      if (write.kind === 'services' && write.op === 'put') {
        const { version, rollout, rollingBack } = write.value as ServiceRecord;
        const fields = {
          service: write.id,
          version,
          rollout: rollout?.state,
          why: rollout?.message,
        };
        if (rollout?.state === 'paused' || (rollingBack && !rollout?.readyAt))
          this.log.warn(fields, rollingBack ? 'rolling back' : 'rollout paused');
        else this.log.info(fields, 'rollout moved on');
      }
      if (write.kind !== 'tasks') continue;
      const task = write.op === 'put' ? (write.value as TaskRecord) : undefined;
      if (task?.desired === 'shutdown') this.stopped.add({ cause: stopCauseOf(this.state, task) });
      this.log.info(
        {
          task: write.id,
          op: task ? (task.desired === 'shutdown' ? 'stop' : 'create') : 'forget',
          onNode: task?.nodeId ?? undefined,
          reason: task?.reason,
        },
        'task planned',
      );
    }
  }
}

/** Whether the task was stopped for its node's sake (a reschedule) or its service's. */
function stopCauseOf(state: ClusterState, task: TaskRecord): 'node' | 'service' {
  if (!task.nodeId) return 'service'; // it never had a node
  const node = state.get('nodes', task.nodeId)?.value;
  const away = !node || ['down', 'left', 'removed'].includes(node.status);
  return away || node.availability === 'drain' ? 'node' : 'service';
}

function newTaskId(serviceId: string, slot: number, nodeId: string | null): string {
  return `${serviceId}.${slot || nodeId}.${randomBytes(3).toString('hex')}`;
}
