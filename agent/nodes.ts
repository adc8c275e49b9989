import type { NodeRecord } from '../mesh/api/nodes.js';
import type { TaskRecord, TaskStatus } from '../mesh/api/tasks.js';
import { ControlError } from './control.js';
import { type StateAccess, writeConditionally } from './stacks.js';

const LABEL = /^[A-Za-z0-9][\w.-]*$/;

/** `mesh node inspect|drain|activate|label`: node settings kept in the replicated state. */
export class Nodes {
  constructor(
    private readonly access: StateAccess,
    private readonly self: string,
  ) {}

  /** A node by ID, unique ID prefix, or address. */
  resolve(name: string): string {
    const nodes = this.access.state.list<NodeRecord>('nodes');
    const exact = nodes.find((n) => n.id === name || n.value.address.split(':')[0] === name);
    if (exact) return exact.id;
    const prefixed = nodes.filter((n) => n.id.startsWith(name));
    if (prefixed.length === 1) return (prefixed[0] as { id: string }).id;
    throw new ControlError(404, `no single node matches "${name}"; see "mesh node ls"`);
  }

  inspect(name: string) {
    const id = this.resolve(name);
    const record = this.access.state.get<NodeRecord>('nodes', id)?.value as NodeRecord;
    const tasks = this.access.state
      .list<TaskRecord>('tasks')
      .filter((t) => t.value.nodeId === id)
      .map((t) => ({
        id: t.id,
        desired: t.value.desired,
        state: this.access.state.get<TaskStatus>('statuses', t.id)?.value.state ?? 'assigned',
      }));
    return { id, ...record, since: new Date(record.since).toISOString(), tasks };
  }

  /**
   * Removes a node for good: its tasks go elsewhere and its certificate is refused by every node
   * (the record stays, marked removed, so that it is refused after restarts too). A node still
   * alive is refused unless forced: stop its agent first, or it keeps running its containers.
   */
  async remove(body: unknown): Promise<{ id: string }> {
    const { node, force } = (body ?? {}) as { node?: string; force?: boolean };
    const id = this.resolve(String(node));
    if (id === this.self)
      throw new ControlError(400, `node ${id} is the one answering: run "mesh node rm" on another`);
    await writeConditionally(this.access, () => {
      const stored = this.access.state.get<NodeRecord>('nodes', id);
      if (!stored) throw new ControlError(404, `node ${id} was removed meanwhile`);
      if (stored.value.status === 'removed') return [];
      if ((stored.value.status === 'ready' || stored.value.status === 'suspect') && !force)
        throw new ControlError(
          409,
          `node ${id} is ${stored.value.status === 'ready' ? 'alive' : 'still answering now and then'}: drain it and stop its agent first, or pass --force`,
        );
      const value: NodeRecord = { ...stored.value, status: 'removed', since: Date.now() };
      return [{ op: 'put', kind: 'nodes', id, value, ifVersion: stored.version }];
    });
    return { id };
  }

  /** Sets availability (drain, active) or labels: KEY=VALUE adds, KEY- removes. */
  async update(body: unknown): Promise<{ id: string; node: NodeRecord }> {
    const { node, availability, labels } = (body ?? {}) as {
      node?: string;
      availability?: string;
      labels?: string[];
    };
    const id = this.resolve(String(node));
    if (availability !== undefined && availability !== 'active' && availability !== 'drain')
      throw new ControlError(400, `availability must be active or drain, got "${availability}"`);
    for (const label of labels ?? []) {
      const key = label.endsWith('-') ? label.slice(0, -1) : label.split('=')[0];
      if (!key || !LABEL.test(key) || (!label.endsWith('-') && !label.includes('=')))
        throw new ControlError(400, `label "${label}" is not KEY=VALUE (add) or KEY- (remove)`);
    }
    let updated: NodeRecord | undefined;
    await writeConditionally(this.access, () => {
      const stored = this.access.state.get<NodeRecord>('nodes', id);
      if (!stored) throw new ControlError(404, `node ${id} was removed meanwhile`);
      const userLabels = { ...stored.value.userLabels };
      for (const label of labels ?? []) {
        if (label.endsWith('-')) delete userLabels[label.slice(0, -1)];
        else {
          const eq = label.indexOf('=');
          userLabels[label.slice(0, eq)] = label.slice(eq + 1);
        }
      }
      updated = {
        ...stored.value,
        availability: (availability as NodeRecord['availability']) ?? stored.value.availability,
        userLabels,
      };
      return [{ op: 'put', kind: 'nodes', id, value: updated, ifVersion: stored.version }];
    });
    return { id, node: updated as NodeRecord };
  }
}
