import type { Logger } from 'pino';
import type { RaftNode } from '../mesh/raft/node.js';
import { RaftError } from '../mesh/raft/raft.js';
import type { ControlRequest } from './control.js';
import type { ClusterLogs } from './logs.js';
import type { Nodes } from './nodes.js';
import type { Stacks } from './stacks.js';

/** The control API's stack, task, log and node routes. */
export function stackRoutes(
  stacks: Stacks,
  nodes: Nodes,
  logs: ClusterLogs,
  raft: RaftNode,
  log: Logger,
) {
  /** Reads answer from this replica once it caught up with the leader (2 s, then as it is). */
  const fresh =
    <T>(read: (request: ControlRequest) => T) =>
    async (request: ControlRequest): Promise<T> => {
      await raft.linearizableRead(2000).catch((error: Error) => {
        log.debug({ reason: error.message }, 'answered from the local replica, not confirmed');
      });
      return read(request);
    };
  return {
    'POST /v1/stacks': ({ body }: ControlRequest) => stacks.deploy(body),
    'GET /v1/stacks': fresh(() => stacks.list()),
    'POST /v1/stacks/rm': ({ body }: ControlRequest) => stacks.remove(body),
    'POST /v1/services/scale': ({ body }: ControlRequest) => stacks.scale(body),
    'POST /v1/services/rollback': ({ body }: ControlRequest) => stacks.rollback(body),
    'GET /v1/tasks': fresh(({ query }) => stacks.tasks(query)),
    'GET /v1/logs': ({ query }: ControlRequest) => logs.gather(query),
    'GET /v1/node': fresh(({ query }) => nodes.inspect(query.get('node') ?? '')),
    'POST /v1/node': ({ body }: ControlRequest) => nodes.update(body),
    // Whether the node is still alive is judged on the leader's latest record of it.
    'POST /v1/node/rm': fresh(({ body }) => nodes.remove(body)),
  };
}

// A person is waiting: while an election settles, a write waits for the leader this long.
const LEADER_WAIT_MS = 5000;

/** Proposes through the leader, waiting out a moment without one (start-up, an election). */
export async function proposeSoon(raft: RaftNode, command: unknown): Promise<unknown> {
  const deadline = Date.now() + LEADER_WAIT_MS;
  for (;;) {
    try {
      return await raft.propose(command);
    } catch (error) {
      const leaderless = error instanceof RaftError && error.code === 'not-leader';
      if (!leaderless || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
