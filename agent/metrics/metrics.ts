import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  type LabelValues,
  type MetricConfiguration,
  Registry,
} from 'prom-client';
import type { MemberStatus } from '../../mesh/membership/messages.js';
import type { Membership } from '../../mesh/membership/runtime.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { DataPlane } from '../../proxy/data-plane.js';
import type { Stacks } from '../cluster/stacks.js';
import type { GossipedMeta } from '../identity/meta.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import { pendingCause } from '../scheduler/scheduler.js';
import type { TaskFiles } from '../secrets/files.js';

/** How often the event loop's lag is sampled: still many samples to each scrape. */
const LOOP_LAG_SAMPLE_MS = 100;

/** What the metrics are read from, at each scrape: the node's parts, as they are now. */
export interface MetricSources {
  raft: RaftNode;
  membership: Membership;
  state: ClusterState;
  stacks: Stacks;
  orchestrator: Orchestrator;
  dataPlane: DataPlane;
  files: TaskFiles;
  meta: GossipedMeta;
}

const MEMBER_STATES: MemberStatus[] = ['alive', 'suspect', 'dead', 'left'];
const ROLLOUT_STATES = ['updating', 'paused', 'completed', 'rolled-back'] as const;

type Labels = LabelValues<string>;
/** What a metric reports at a scrape: a value per label set. */
type Reading = Array<{ labels: Labels; value: number }>;

/**
 * This node's metrics, for Prometheus. Nothing is counted here: every value is read at scrape
 * time from the part that keeps it (Raft, membership, DNS, L4, the replica), so a scrape costs a
 * look, and a node that is never scraped pays nothing. Labels are bounded: a service, a state,
 * an outcome — never a task ID or a client address. The cluster-wide gauges (services, pending
 * tasks, rollouts) come from the leader only, so that a sum over nodes counts each once.
 */
export class NodeMetrics {
  private readonly registry = new Registry();

  constructor(private readonly sources: MetricSources) {
    this.processMetrics();
    this.raftMetrics();
    this.membershipMetrics();
    this.orchestrationMetrics();
    this.dataPlaneMetrics();
    this.nodeMetrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric of the node, its HTTP ingress workers' included, in the Prometheus text format. */
  async text(): Promise<string> {
    const [own, ingress] = await Promise.all([
      this.registry.metrics(),
      this.sources.dataPlane.ingressMetrics(),
    ]);
    return ingress ? `${own}\n${ingress}` : own;
  }

  /**
   * prom-client's process and Node metrics (memory, CPU, event loop lag, GC), less the gauges
   * named like counters (nodejs_active_handles_total and its kin), which promtool refuses: their
   * values are in the same metrics without the suffix. The event loop is sampled every
   * LOOP_LAG_SAMPLE_MS, not every 10 ms as by default: at 10 ms the sampling timer woke an idle
   * agent 100 times a second, the most of its idle CPU.
   */
  private processMetrics(): void {
    collectDefaultMetrics({
      register: this.registry,
      eventLoopMonitoringPrecision: LOOP_LAG_SAMPLE_MS,
    });
    for (const metric of this.registry.getMetricsAsArray())
      if (metric.name.endsWith('_total') && String(metric.type) !== 'counter')
        this.registry.removeSingleMetric(metric.name);
  }

  private raftMetrics(): void {
    const { raft } = this.sources;
    const node = raft.raft;
    this.gauge('mesh_raft_term', 'The Raft term this node is in', [], () => [
      { labels: {}, value: node.term },
    ]);
    this.gauge('mesh_raft_commit_index', 'The highest log index known committed', [], () => [
      { labels: {}, value: node.log.committed },
    ]);
    this.gauge(
      'mesh_raft_applied_index',
      'The highest log index applied to the replica',
      [],
      () => [{ labels: {}, value: node.log.applied }],
    );
    this.gauge('mesh_raft_apply_lag', 'Entries committed but not yet applied here', [], () => [
      { labels: {}, value: node.log.committed - node.log.applied },
    ]);
    this.gauge('mesh_raft_leader', '1 on the node that leads the cluster, 0 elsewhere', [], () => [
      { labels: {}, value: node.role === 'leader' ? 1 : 0 },
    ]);
    this.gauge('mesh_raft_voters', 'Voters in the Raft configuration', [], () => [
      { labels: {}, value: raft.membership.voters.length },
    ]);
    this.counter(
      'mesh_raft_leader_changes_total',
      'Times the leader this node knows changed (a new one, or none for a while)',
      [],
      () => raft.counts.leaderChanges.entries(),
    );
    this.counter(
      'mesh_raft_proposals_total',
      'Writes this node took as leader, by outcome (committed, unconfirmed, refused, failed)',
      ['outcome'],
      () => raft.counts.proposals.entries(),
    );
  }

  private membershipMetrics(): void {
    const { membership } = this.sources;
    this.gauge('mesh_members', 'Members as this node sees them, by state', ['state'], () => {
      const members = membership.members();
      return MEMBER_STATES.map((state) => ({
        labels: { state },
        value: members.filter((m) => m.status === state).length,
      }));
    });
    this.counter(
      'mesh_swim_failed_probes_total',
      'Probes of another member that got no ack, direct or indirect (each makes it suspect)',
      [],
      () => [{ labels: {}, value: membership.failedProbes }],
    );
  }

  private orchestrationMetrics(): void {
    const { raft, state, stacks, orchestrator } = this.sources;
    const leading = () => raft.raft.role === 'leader';
    this.gauge(
      'mesh_service_replicas',
      'Tasks of each service of the current version: desired, running, ready (leader only)',
      ['service', 'state'],
      () =>
        leading()
          ? stacks
              .list()
              .flatMap((stack) => stack.services)
              .flatMap((s) =>
                'damaged' in s
                  ? []
                  : (['desired', 'running', 'ready'] as const).map((field) => ({
                      labels: { service: s.id, state: field },
                      value: s[field],
                    })),
              )
          : [],
    );
    this.gauge(
      'mesh_tasks_pending',
      'Tasks waiting for a node, by what is short (leader only)',
      ['cause'],
      () => {
        if (!leading()) return [];
        const waiting = state
          .list('tasks')
          .map((t) => t.value)
          .filter((t) => t.desired === 'running' && t.nodeId === null);
        const byCause = new Map<string, number>();
        for (const task of waiting) {
          const cause = pendingCause(task.reason ?? '');
          byCause.set(cause, (byCause.get(cause) ?? 0) + 1);
        }
        return [...byCause].map(([cause, value]) => ({ labels: { cause }, value }));
      },
    );
    this.gauge(
      'mesh_rollouts',
      'Services by the state of their latest rollout (leader only)',
      ['state'],
      () => {
        if (!leading()) return [];
        const rollouts = state.list('services').map((s) => s.value.rollout?.state);
        return ROLLOUT_STATES.map((s) => ({
          labels: { state: s },
          value: rollouts.filter((r) => r === s).length,
        }));
      },
    );
    this.counter(
      'mesh_tasks_stopped_total',
      'Tasks this node told to stop as leader: for their node (rescheduled) or their service',
      ['cause'],
      () => orchestrator.stopped.entries(),
    );
  }

  private dataPlaneMetrics(): void {
    const { dataPlane } = this.sources;
    const { dns, l4 } = dataPlane.counts;
    this.counter(
      'mesh_dns_answers_total',
      'DNS answers this node sent, by question type and response code',
      ['type', 'rcode'],
      () => dns.answers.entries(),
    );
    this.counter(
      'mesh_dns_forwarded_total',
      'Questions for names outside the cluster sent upstream, by outcome',
      ['outcome'],
      () => dns.forwarded.entries(),
    );
    this.counter(
      'mesh_l4_connections_total',
      'Connections to a service address or published port, by service: forwarded or failed',
      ['service', 'outcome'],
      () => l4.connections.entries(),
    );
    this.gauge(
      'mesh_l4_open_connections',
      'Connections forwarded to a service now open, by service',
      ['service'],
      () => l4.open.entries(),
    );
  }

  private nodeMetrics(): void {
    const { files, meta } = this.sources;
    this.counter(
      'mesh_secret_deliveries_total',
      'Tasks of this node given their secrets and configs, by outcome',
      ['outcome'],
      () => files.deliveries.entries(),
    );
    this.gauge(
      'mesh_certificate_expiry_seconds',
      "Seconds until this node's certificate expires (it renews itself at two thirds of its life)",
      [],
      () => {
        const expires = meta.current.certExpires;
        return expires ? [{ labels: {}, value: (Date.parse(expires) - Date.now()) / 1000 }] : [];
      },
    );
  }

  private gauge(name: string, help: string, labelNames: string[], read: () => Reading): void {
    new Gauge({
      ...this.config(name, help, labelNames),
      collect() {
        this.reset();
        for (const { labels, value } of read()) this.set(labels, value);
      },
    });
  }

  private counter(name: string, help: string, labelNames: string[], read: () => Reading): void {
    new Counter({
      ...this.config(name, help, labelNames),
      collect() {
        this.reset();
        for (const { labels, value } of read()) this.inc(labels, value);
      },
    });
  }

  private config(name: string, help: string, labelNames: string[]): MetricConfiguration<string> {
    return { name, help, labelNames, registers: [this.registry] };
  }
}
