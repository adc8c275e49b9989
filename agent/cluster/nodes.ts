import { type NodeRecord, nodeLabels } from '../../mesh/api/nodes.js';
import type { Membership } from '../../mesh/membership/runtime.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import { hostOf } from '../../mesh/transport/address.js';
import type {
  NodeDetail,
  NodeRow,
  NodesResponse,
  NodeUpdateRequest,
  RequestOf,
  Untrusted,
} from '../control/api.js';
import { ConflictError, InvalidError, NotFoundError } from '../errors.js';
import type { StateAccess } from './state-access.js';

const LABEL = /^[A-Za-z0-9][\w.-]*$/;

/**
 * `mesh node ls|inspect|drain|activate|label|rm`: the nodes as the cluster records them and as
 * this node's gossip sees them, and the settings operators keep in the replicated state.
 */
export class Nodes {
  constructor(
    private readonly access: StateAccess,
    private readonly self: string,
    private readonly membership: Membership,
    private readonly raft: RaftNode,
  ) {}

  /** Raft's voters now: the managers of node.role constraints. */
  get voters(): readonly string[] {
    return this.raft.membership.voters;
  }

  /**
   * The cluster's node registry, read through the leader (ReadIndex), beside what this node's
   * gossip sees now. Without a quorum it answers from this replica and says it may be stale.
   */
  async list(): Promise<NodesResponse> {
    const consistent = await this.access.caughtUp();
    const live = new Map(this.membership.members().map((m) => [m.id, m]));
    const recorded = new Map(this.access.state.list('nodes').map((o) => [o.id, o.value]));
    const ids = [...new Set([...recorded.keys(), ...live.keys()])];
    const { voters, learners } = this.raft.membership;
    const { leader } = this.raft.raft;
    const nodes = ids.map((id): NodeRow => {
      const member = live.get(id);
      const record = recorded.get(id);
      const manager = !voters.includes(id)
        ? null
        : id === leader
          ? 'leader'
          : member?.status === 'alive'
            ? 'reachable'
            : 'unreachable';
      return {
        id,
        hostname: record?.hostname ?? '',
        address: member?.address ?? record?.address ?? '',
        // What gossip sees now; for a node it has never seen, what the cluster recorded.
        status:
          record?.status === 'removed'
            ? 'removed'
            : (member?.status ?? record?.status ?? 'unknown'),
        // Until it is back: its next run gossips without the flag.
        restarting: member?.status !== 'alive' && record?.restarting === true,
        since: member ? new Date(member.since).toISOString() : null,
        version: member?.meta.version ?? record?.version ?? '',
        labels: nodeLabels({
          labels: member?.meta.labels ?? record?.labels ?? {},
          userLabels: record?.userLabels ?? {},
        }),
        capacity: member?.meta.capacity ?? record?.capacity,
        // A node admitted but not yet seen by gossip has a bare record: no labels nor address.
        recorded: record !== undefined && record.status !== 'joining',
        self: id === this.self,
        raft: voters.includes(id) ? 'voter' : learners.includes(id) ? 'learner' : 'none',
        manager,
        availability: record?.availability ?? 'active',
        token: record?.workerOnly ? 'worker' : 'manager',
        certExpires: member?.meta.certExpires ?? null,
        ingress: member?.meta.ingress ?? null,
        ingressUnserved: member?.meta.ingressUnserved ?? [],
      };
    });
    return { consistent, nodes };
  }

  /** A node by ID, unique ID prefix, or address. */
  resolve(name: string): string {
    const nodes = this.access.state.list('nodes');
    const exact = nodes.find((n) => n.id === name || hostOf(n.value.address) === name);
    if (exact) return exact.id;
    const prefixed = nodes.filter((n) => n.id.startsWith(name));
    if (prefixed.length === 1) return (prefixed[0] as { id: string }).id;
    throw new NotFoundError(`no single node matches "${name}"; see "mesh node ls"`);
  }

  inspect(name: string): NodeDetail {
    const id = this.resolve(name);
    const record = this.access.state.get('nodes', id)?.value as NodeRecord;
    const tasks = this.access.state
      .list('tasks')
      .filter((t) => t.value.nodeId === id)
      .map((t) => ({
        id: t.id,
        desired: t.value.desired,
        state: this.access.state.get('statuses', t.id)?.value.state ?? 'assigned',
      }));
    return { id, ...record, since: new Date(record.since).toISOString(), tasks };
  }

  /**
   * Removes a node for good: its tasks go elsewhere and its certificate is refused by every node
   * (the record stays, marked removed, so that it is refused after restarts too). A node still
   * alive is refused unless forced: stop its agent first, or it keeps running its containers.
   */
  async remove({ node, force }: Untrusted<RequestOf<'POST /v1/node/rm'>>): Promise<{ id: string }> {
    const id = this.resolve(String(node));
    if (id === this.self)
      throw new InvalidError(`node ${id} is the one answering: run "mesh node rm" on another`);
    await this.access.writeConditionally(() => {
      const stored = this.access.state.get('nodes', id);
      if (!stored) throw new NotFoundError(`node ${id} was removed meanwhile`);
      if (stored.value.status === 'removed') return [];
      if ((stored.value.status === 'ready' || stored.value.status === 'suspect') && !force)
        throw new ConflictError(
          `node ${id} is ${stored.value.status === 'ready' ? 'alive' : 'still answering now and then'}: drain it and stop its agent first, or pass --force`,
        );
      const value: NodeRecord = { ...stored.value, status: 'removed', since: Date.now() };
      return [{ op: 'put', kind: 'nodes', id, value, ifVersion: stored.version }];
    });
    return { id };
  }

  /** Sets availability (drain, active) or labels: KEY=VALUE adds, KEY- removes. */
  async update(request: Untrusted<NodeUpdateRequest>): Promise<{ id: string; node: NodeRecord }> {
    const { node, availability } = request;
    const id = this.resolve(String(node));
    if (availability !== undefined && availability !== 'active' && availability !== 'drain')
      throw new InvalidError(`availability must be active or drain, got "${String(availability)}"`);
    const labels = request.labels ?? [];
    if (!Array.isArray(labels) || labels.some((l) => typeof l !== 'string'))
      throw new InvalidError('labels must be a list of KEY=VALUE or KEY-');
    for (const label of labels as string[]) {
      const key = label.endsWith('-') ? label.slice(0, -1) : label.split('=')[0];
      if (!key || !LABEL.test(key) || (!label.endsWith('-') && !label.includes('=')))
        throw new InvalidError(`label "${label}" is not KEY=VALUE (add) or KEY- (remove)`);
    }
    let updated: NodeRecord | undefined;
    await this.access.writeConditionally(() => {
      const stored = this.access.state.get('nodes', id);
      if (!stored) throw new NotFoundError(`node ${id} was removed meanwhile`);
      const userLabels = { ...stored.value.userLabels };
      for (const label of labels as string[]) {
        const removed = label.endsWith('-') ? label.slice(0, -1) : undefined;
        // The agent's own (--label at init or join) is not the operator's to remove: say so.
        if (removed !== undefined && !(removed in userLabels) && removed in stored.value.labels)
          throw new InvalidError(
            `node ${id}'s label ${removed} was given by its agent (--label ${removed}=${stored.value.labels[removed]} at mesh init or join): mesh node label can override it (${removed}=VALUE), not remove it`,
          );
        if (removed !== undefined) delete userLabels[removed];
        else {
          const eq = label.indexOf('=');
          userLabels[label.slice(0, eq)] = label.slice(eq + 1);
        }
      }
      updated = {
        ...stored.value,
        availability: availability ?? stored.value.availability,
        userLabels,
      };
      return [{ op: 'put', kind: 'nodes', id, value: updated, ifVersion: stored.version }];
    });
    return { id, node: updated as NodeRecord };
  }
}
