import type { ClusterLogs } from '../cluster/logs.js';
import type { Nodes } from '../cluster/nodes.js';
import type { Stacks } from '../cluster/stacks.js';
import type { StateAccess } from '../cluster/state-access.js';
import type { ControlHandlers } from './api.js';

type StackRoutes =
  | 'POST /v1/stacks'
  | 'GET /v1/stacks'
  | 'POST /v1/stacks/rm'
  | 'POST /v1/services/scale'
  | 'POST /v1/services/rollback'
  | 'POST /v1/services/update'
  | 'GET /v1/service'
  | 'GET /v1/tasks'
  | 'GET /v1/volumes'
  | 'GET /v1/logs'
  | 'GET /v1/node'
  | 'GET /v1/placement'
  | 'POST /v1/node'
  | 'POST /v1/node/rm';

/** The control API's stack, task, log and node routes. */
export function stackRoutes(
  stacks: Stacks,
  nodes: Nodes,
  logs: ClusterLogs,
  access: StateAccess,
): Pick<ControlHandlers, StackRoutes> {
  /** Answers from this replica once it is confirmed current; refuses (503) when it cannot be. */
  const fresh =
    <Q, T>(read: (request: Q) => T) =>
    async (request: Q): Promise<Awaited<T>> => {
      await access.current();
      return await read(request);
    };
  return {
    'POST /v1/stacks': (request) => stacks.deploy(request),
    'GET /v1/stacks': fresh(() => stacks.list()),
    'POST /v1/stacks/rm': ({ stack }) => stacks.remove(String(stack)),
    'POST /v1/services/scale': ({ service, replicas }) => stacks.scale(String(service), replicas),
    'POST /v1/services/rollback': ({ service }) => stacks.rollback(String(service)),
    'POST /v1/services/update': (request) => stacks.update(request),
    'GET /v1/service': fresh(({ service }) => stacks.service(String(service ?? ''))),
    'GET /v1/tasks': fresh((query) => stacks.tasks(query)),
    'GET /v1/volumes': fresh(() => stacks.volumes()),
    'GET /v1/logs': (query) => logs.gather(query),
    'GET /v1/node': fresh(({ node }) => nodes.inspect(String(node ?? ''))),
    'GET /v1/placement': fresh(({ service }) =>
      stacks.placement(String(service ?? ''), nodes.voters),
    ),
    'POST /v1/node': (request) => nodes.update(request),
    // Whether the node is still alive is judged on the leader's latest record of it.
    'POST /v1/node/rm': fresh((request) => nodes.remove(request)),
  };
}
