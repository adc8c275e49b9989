/**
 * How an ingress worker reaches replicas on other nodes: over tunnel sessions of its own to their
 * agents (the streams the agent uses, tunnels.ts), so a request to a replica elsewhere crosses no
 * other process of this node. A hop through the agent cost every such request about a quarter of
 * its CPU (the agent's and the worker's both), and every one queued behind the agent's other work.
 *
 * The agent grants what a session needs and keeps it current: the node's identity (renewed, or
 * trusting another CA), and for each member its address and which of its certificates the cluster
 * honours now, so a worker refuses what the agent's own sessions refuse (a retired or revoked
 * certificate) and drops a session once it is not honoured any more.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { issuedCertificates, type NodeRecord } from '../../mesh/api/nodes.js';
import type { Member } from '../../mesh/membership/state.js';
import type { NodeIdentity } from '../../mesh/pki/identity.js';
import type { Admission, Peer } from '../../mesh/transport/tls.js';
import { sessionTls, Tunnels } from '../../mesh/transport/tunnels.js';

/** What a worker knows of a member: where it listens, and whether a certificate is honoured. */
export interface PeerGrant {
  address: string;
  /** Each certificate the cluster recorded for it, by serial: null when honoured, else why not. */
  recorded: Map<string, string | null>;
  /** Why one it did not record is refused (null: honoured, as by a replica not current yet). */
  unrecorded: string | null;
}

export interface TunnelGrant {
  identity: NodeIdentity;
  /** By node ID: every other member. */
  peers: Map<string, PeerGrant>;
}

/** Stands for a serial the cluster did not record, in the reason given for one. */
const UNRECORDED = '<unrecorded>';

/** The agent's side: the grant from its identity, members, node records and admission. */
export function tunnelGrant(
  identity: NodeIdentity,
  members: Pick<Member, 'id' | 'address'>[],
  record: (nodeId: string) => Pick<NodeRecord, 'serial' | 'certificates'> | undefined,
  refusal: Admission,
): TunnelGrant {
  const peers = new Map<string, PeerGrant>();
  for (const { id: nodeId, address } of members) {
    if (nodeId === identity.nodeId) continue;
    const node = record(nodeId);
    const recorded = new Map<string, string | null>();
    for (const { serial } of node ? issuedCertificates(node) : [])
      recorded.set(serial, refusal({ nodeId, serial }) ?? null);
    peers.set(nodeId, {
      address,
      recorded,
      unrecorded: refusal({ nodeId, serial: UNRECORDED }) ?? null,
    });
  }
  return { identity, peers };
}

/** The worker's side: its sessions to other nodes, as the latest grant allows. */
export class WorkerTunnels {
  private grant: TunnelGrant | undefined;
  private readonly tunnels: Tunnels;

  constructor(localAddress: string, connectTimeoutMs: number, log: Logger) {
    this.tunnels = new Tunnels({
      tls: sessionTls(
        () => this.granted.identity,
        () => ({
          clusterId: this.granted.identity.clusterId,
          admission: (peer) => this.refusal(peer),
        }),
        localAddress,
      ),
      connectTimeoutMs,
      log,
    });
  }

  /** A new grant: a renewed identity makes new sessions; one no longer honoured is dropped. */
  update(grant: TunnelGrant): void {
    const before = this.grant?.identity;
    const same =
      before !== undefined &&
      before.certPem === grant.identity.certPem &&
      before.caCertPem === grant.identity.caCertPem &&
      before.chainPem === grant.identity.chainPem;
    // Kept as it was when unchanged: the sessions' TLS context is made once per identity.
    this.grant = same ? { ...grant, identity: before } : grant;
    if (before && !same) this.tunnels.renew();
    this.tunnels.drop((peer) => this.refusal(peer));
  }

  /** A stream to what node `nodeId` serves under `target`, chosen as of state index `asOf`. */
  open(nodeId: string, target: string, asOf: number): Promise<Duplex> {
    const peer = this.grant?.peers.get(nodeId);
    if (!peer) return Promise.reject(new Error(`node ${nodeId} is not a member`));
    return this.tunnels.open({ address: peer.address, nodeId }, target, asOf);
  }

  private get granted(): TunnelGrant {
    if (!this.grant) throw new Error('no tunnel grant from the agent yet');
    return this.grant;
  }

  private refusal({ nodeId, serial }: Pick<Peer, 'nodeId' | 'serial'>): string | undefined {
    const peer = this.grant?.peers.get(nodeId);
    if (!peer) return `node ${nodeId} is not a member`;
    const known = peer.recorded.get(serial);
    if (known !== undefined) return known ?? undefined;
    return peer.unrecorded?.replace(UNRECORDED, serial) ?? undefined;
  }
}
