import type { NodeRecord } from '../../mesh/api/nodes.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';

const ROUTES_AS_OF = 'routes-as-of/v1';
/** The longest a node holds an asker's question open: past it, the asker goes on without it. */
const MAX_WAIT_MS = 30_000;
/** Time for the answer to travel back after the node's own wait ran out. */
const ANSWER_SLACK_MS = 1000;

/** The nodes asked, by the status their record has. */
const ASKED: ReadonlySet<NodeRecord['status']> = new Set(['ready', 'suspect']);

/** A node that did not say it routes as of an index, and why. */
export interface Lagging {
  node: string;
  reason: string;
}

/**
 * Whether every node routes as of a cluster state index: the barrier between taking a task out
 * of the routing and stopping it. Each node applies the log at its own moment (a follower a round
 * trip after the leader; one busy or paused, later); a task stopped before some node applied
 * its removal would get that node's next connections and lose them. Each node answers for its
 * own data plane; the node stopping a task asks every one up at once.
 */
export class RoutingViews {
  constructor(
    private readonly nodeId: string,
    private readonly state: ClusterState,
    private readonly transport: Transport,
    /** This node's data plane: why it does not route as of `index` within `maxWaitMs`, if not. */
    private readonly local: (index: number, maxWaitMs: number) => Promise<string | undefined>,
  ) {
    transport.handle(ROUTES_AS_OF, async (body) => {
      const { index, maxWaitMs } = (body ?? {}) as { index?: unknown; maxWaitMs?: unknown };
      if (!Number.isSafeInteger(index) || typeof maxWaitMs !== 'number' || !(maxWaitMs >= 0))
        throw new Error('routes-as-of needs {index: integer, maxWaitMs: number}');
      return (await this.local(index as number, Math.min(maxWaitMs, MAX_WAIT_MS))) ?? null;
    });
  }

  /**
   * Resolves once this node and every other one up routes as of `index`, or once `maxWaitMs`
   * ran out: the nodes that did not say so by then, each with why (none: every node does).
   * A suspect node is asked too: one paused (not dead) resumes with the view it had. One down,
   * joining or gone is not: it serves no one, or its view is new.
   */
  async asOf(index: number, maxWaitMs: number): Promise<Lagging[]> {
    const others = this.state
      .list('nodes')
      .filter(({ id, value }) => id !== this.nodeId && ASKED.has(value.status));
    const ask = async (node: string, asked: () => Promise<string | null | undefined>) => {
      try {
        const reason = await asked();
        return reason ? { node, reason } : undefined;
      } catch (error) {
        return { node, reason: (error as Error).message };
      }
    };
    const answers = await Promise.all([
      ask(this.nodeId, () => this.local(index, maxWaitMs)),
      ...others.map(({ id, value }) =>
        ask(
          id,
          async () =>
            (await this.transport.request(
              { address: value.address, nodeId: id },
              ROUTES_AS_OF,
              { index, maxWaitMs },
              { timeoutMs: maxWaitMs + ANSWER_SLACK_MS },
            )) as string | null,
        ),
      ),
    ]);
    return answers.filter((lagging): lagging is Lagging => lagging !== undefined);
  }
}
