/** Which certificates this node honours, and what a removal or a retirement closes. */
import type { Logger } from 'pino';
import { certificateRefusal, issuedCertificates, type NodeRecord } from '../../mesh/api/nodes.js';
import type { Membership } from '../../mesh/membership/runtime.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Admission } from '../../mesh/transport/tls.js';
import type { Transport } from '../../mesh/transport/transport.js';

/**
 * How long a certificate stays honoured once a newer one is issued to its node: connections made
 * with it just before go on for a while, then are dropped and made again with the new one.
 */
export const RETIRE_GRACE_MS = 10 * 60_000;
/** How often live connections are looked at again, for certificates retired meanwhile. */
const RECHECK_MS = 10_000;

/**
 * The transport's admission, from this node's replica: a certificate is honoured only with a
 * serial the cluster recorded for its node and did not retire, and never once the node was
 * removed. A replica that is not current (it has not heard the leader lately: a node just joined
 * or started, or cut off) cannot know what was issued meanwhile: there, a node or serial it has no
 * record of is honoured, so that it can catch up from a leader renewed while it was away; what it
 * knows to be removed or retired is refused all the same, and once it is current every connection
 * is looked at again (followAdmission).
 */
export function admission(
  state: ClusterState,
  current: () => boolean,
  now: () => number = Date.now,
): Admission {
  return ({ nodeId, serial }) => {
    const record = state.get('nodes', nodeId)?.value;
    const refusal = certificateRefusal(nodeId, serial, record, now());
    if (!refusal) return undefined;
    const unknown = !record || !issuedCertificates(record).some((c) => c.serial === serial);
    return unknown && record?.status !== 'removed' && !current() ? undefined : refusal;
  };
}

/**
 * Live connections follow the replica: a node record that changes (a removal, a renewal that
 * retires a certificate) and the passing of time make the transport look again at every
 * connection, and drop those no longer honoured, at once, on every node. A removed node is also
 * forgotten by gossip, so nobody redials it. Returns the stop.
 */
export function followAdmission(
  state: ClusterState,
  transport: Transport,
  gossip: Pick<Membership, 'forget'>,
  self: string,
  log: Logger,
): () => void {
  let removed = false;
  const stopWatching = state.watch(({ kind, id, object }) => {
    if (kind !== 'nodes') return;
    const node = object?.value as NodeRecord | undefined;
    if (id === self && node?.status === 'removed' && !removed) {
      removed = true;
      log.error('this node was removed from the cluster (mesh node rm): it is refused everywhere');
    } else if (node?.status === 'removed') gossip.forget(id);
    transport.recheck();
  });
  const timer = setInterval(() => transport.recheck(), RECHECK_MS);
  timer.unref();
  return () => {
    stopWatching();
    clearInterval(timer);
  };
}

/** Why a node coming back with its own data dir may not have its identity again, if it may not. */
export function readmissionRefusal(id: string, state: ClusterState): string | undefined {
  const record = state.get('nodes', id)?.value;
  if (!record) return `node ${id} is not a member of this cluster; join with an empty data dir`;
  if (record.status === 'removed')
    return `node ${id} was removed (mesh node rm) and cannot come back; join with an empty data dir as a new node`;
  return undefined;
}
