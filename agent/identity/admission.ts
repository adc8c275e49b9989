/** Which nodes may connect to this one, and which are refused for good. */
import type { Logger } from 'pino';
import type { NodeRecord } from '../../mesh/api/nodes.js';
import type { Membership } from '../../mesh/membership/runtime.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';

/**
 * Removed nodes stay refused: the transport revokes the certificate of every node the replicated
 * records mark removed, replayed at every start. Returns the way to stop watching.
 */
export function refuseRemovedNodes(
  state: ClusterState,
  transport: Transport,
  self: string,
  log: Logger,
): () => void {
  return state.watch(({ kind, id, object }) => {
    const node = object?.value as NodeRecord | undefined;
    if (kind !== 'nodes' || node?.status !== 'removed' || !node.serial) return;
    if (transport.revocations.has(node.serial)) return;
    if (id === self)
      log.error('this node was removed from the cluster (mesh node rm): it is refused everywhere');
    else log.info({ removed: id, serial: node.serial }, 'node removed: its certificate is refused');
    transport.revoke(node.serial);
  });
}

/**
 * Whether a node may connect to this one: the cluster recorded it (and did not remove it), or,
 * for a node this replica does not know yet (it is behind, or new), a member vouches for it in
 * gossip: gossip only ever comes from nodes some member admitted.
 */
export function admitted(
  id: string,
  state: ClusterState,
  membership: Membership | undefined,
): boolean {
  const record = state.get<NodeRecord>('nodes', id)?.value;
  if (record) return record.status !== 'removed';
  return membership?.members().some((m) => m.id === id) ?? false;
}

/** Why a node coming back with its own data dir may not have its identity again, if it may not. */
export function readmissionRefusal(id: string, state: ClusterState): string | undefined {
  const record = state.get<NodeRecord>('nodes', id)?.value;
  if (!record) return `node ${id} is not a member of this cluster; join with an empty data dir`;
  if (record.status === 'removed')
    return `node ${id} was removed (mesh node rm) and cannot come back; join with an empty data dir as a new node`;
  return undefined;
}
