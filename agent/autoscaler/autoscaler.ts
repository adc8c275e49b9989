import type { Logger } from 'pino';
import { amount, listOf, object, string } from '../../mesh/api/schema.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';
import { repeatOneAtATime } from '../repeat.js';
import { autoscaleRound, type Heard, REPORT_STALE_MS, type UsageReport } from './round.js';
import { SAMPLE_MS } from './usage-sampler.js';

/** A node's usage report to the leader. */
const USAGE_REPORT = 'autoscale-usage';

const checkReport = object({
  required: {
    tasks: listOf(
      object({ required: { task: string }, optional: { cpu: amount, memory: amount } }),
    ),
    served: listOf(object({ required: { service: string, rps: amount } })),
  },
});

/**
 * The autoscaler: every node sends its usage reports to the leader (deliver); the leader keeps
 * each node's latest in memory and, every SAMPLE_MS, decides and writes each autoscaled
 * service's replica count and record (see round.ts). What a new leader needs is in the record;
 * the reports it has not heard yet come within a sample.
 */
export class Autoscaler {
  private readonly heard = new Map<string, Heard>();
  private stopRounds: (() => void) | undefined;

  constructor(
    private readonly options: {
      nodeId: string;
      raft: RaftNode;
      state: ClusterState;
      transport: Transport;
      log: Logger;
    },
  ) {
    options.transport.handle(USAGE_REPORT, (body, from) => {
      const problem = checkReport(body, 'report');
      if (problem) throw new Error(`usage report refused: ${problem}`);
      this.hear(from.nodeId, body as UsageReport);
      return undefined;
    });
  }

  start(): void {
    this.stopRounds = repeatOneAtATime(
      SAMPLE_MS,
      () => this.round(),
      (error) => this.options.log.warn({ err: error }, 'autoscaling round failed; trying again'),
    );
  }

  stop(): void {
    this.stopRounds?.();
  }

  /** This node's report: kept here when it leads, sent to the leader otherwise. */
  deliver(report: UsageReport): void {
    const { raft, state, transport, nodeId, log } = this.options;
    const leader = raft.raft.leader;
    if (leader === nodeId) {
      this.hear(nodeId, report);
      return;
    }
    const address = leader ? state.get('nodes', leader)?.value.address : undefined;
    if (!leader || !address) return; // no leader to tell: the next sample goes to the next one
    try {
      transport.send({ address, nodeId: leader }, USAGE_REPORT, report);
    } catch (error) {
      log.debug({ leader, reason: (error as Error).message }, 'usage report not sent');
    }
  }

  private hear(node: string, report: UsageReport): void {
    if (this.options.raft.raft.role !== 'leader') return;
    this.heard.set(node, { node, at: Date.now(), report });
  }

  private async round(): Promise<void> {
    const { raft, state, log } = this.options;
    if (raft.raft.role !== 'leader') {
      this.heard.clear();
      return;
    }
    const now = Date.now();
    // A report too old to count is kept no longer: a node that left is forgotten.
    for (const [node, h] of this.heard) if (now - h.at > REPORT_STALE_MS) this.heard.delete(node);
    const batches = autoscaleRound(
      {
        services: state.list('services'),
        tasks: state.list('tasks').map((t) => t.value),
        statuses: new Map(state.list('statuses').map((s) => [s.id, s.value])),
        records: new Map(state.list('autoscaling').map((r) => [r.id, r.value])),
      },
      [...this.heard.values()],
      now,
    );
    for (const { writes, scaling } of batches) {
      const outcome = (await raft.propose({ op: 'batch', writes })) as {
        ok: boolean;
        reason?: string;
      };
      if (!outcome.ok)
        // A deploy or the orchestrator wrote the service in between: the next round sees it.
        log.debug({ service: writes[0]?.id, reason: outcome.reason }, 'autoscaling write refused');
      else if (scaling) log.info(scaling, 'autoscaled');
    }
  }
}
