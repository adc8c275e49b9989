import { createHash } from 'node:crypto';
import { KINDS, type Kind, type KindTypes, type SettingTypes } from './kinds.js';
import { checkObject, checkPut } from './validation.js';

export interface StoredObject<T = unknown> {
  id: string;
  /** Raft index of the command that last wrote it: a per-object version that only grows. */
  version: number;
  value: T;
}

/**
 * A change to the desired state. `ifVersion` makes a write conditional (compare-and-set), so two
 * writers that read the same version cannot both win; version 0 means "does not exist yet".
 */
export type Write =
  | { op: 'put'; kind: Kind; id: string; value: unknown; ifVersion?: number }
  | { op: 'delete'; kind: Kind; id: string; ifVersion?: number };

/** A batch applies all its writes or, when one condition fails, none of them. */
export type Command = Write | { op: 'batch'; writes: Write[] };

export type Outcome = { ok: true; version: number } | { ok: false; reason: string };

export interface Change {
  kind: Kind;
  id: string;
  /** Undefined when the object was deleted. */
  object: StoredObject | undefined;
  /** What it was before this write; undefined when it is new (or the state was restored). */
  previous?: StoredObject;
  /** The whole state was replaced by a snapshot: every object is told again, none is new. */
  restored?: true;
}

/** An object a snapshot held that does not pass its kind's checks: set aside, not stored. */
export interface Damaged {
  kind: Kind;
  id: string;
  reason: string;
}

export class CommandError extends Error {
  override name = 'CommandError';
}

/** Checks a command that came from the log; a bad one is refused, never applied half-way. */
export function parseCommand(data: unknown): Command {
  const c = data as Record<string, unknown> | null;
  if (typeof c === 'object' && c !== null && c.op === 'batch') {
    if (!Array.isArray(c.writes)) throw new CommandError('batch without a list of writes');
    return { op: 'batch', writes: c.writes.map(parseWrite) };
  }
  return parseWrite(data);
}

function parseWrite(data: unknown): Write {
  const c = data as Record<string, unknown> | null;
  if (typeof c !== 'object' || c === null) throw new CommandError('command is not an object');
  if (!KINDS.includes(c.kind as Kind)) throw new CommandError(`unknown kind "${String(c.kind)}"`);
  if (typeof c.id !== 'string' || c.id === '') throw new CommandError('command without an id');
  if (c.ifVersion !== undefined && !Number.isSafeInteger(c.ifVersion))
    throw new CommandError('ifVersion must be an integer');
  if (c.op === 'put' && 'value' in c) return c as unknown as Write;
  if (c.op === 'delete') return c as unknown as Write;
  throw new CommandError(`unknown op "${String(c.op)}"`);
}

/**
 * The replicated desired state: every node applies the same commands in the same (log) order and
 * so holds the same objects. Applying is deterministic: it reads nothing but the command and the
 * log index. Every object it holds passed its kind's checks (mesh/api): a command with a bad
 * value is refused whole, and an object a snapshot holds that fails them is set aside as damaged,
 * so readers never meet one.
 */
export class ClusterState {
  private objects = new Map<Kind, Map<string, StoredObject>>(KINDS.map((k) => [k, new Map()]));
  private setAside: Damaged[] = [];
  private listeners = new Set<(change: Change) => void>();
  appliedIndex = 0;

  get<K extends Kind>(kind: K, id: string): StoredObject<KindTypes[K]> | undefined {
    return this.objects.get(kind)?.get(id) as StoredObject<KindTypes[K]> | undefined;
  }

  list<K extends Kind>(kind: K): StoredObject<KindTypes[K]>[] {
    return [...(this.objects.get(kind)?.values() ?? [])] as StoredObject<KindTypes[K]>[];
  }

  /** A setting, as the type its ID names. */
  setting<K extends keyof SettingTypes>(id: K): StoredObject<SettingTypes[K]> | undefined {
    return this.objects.get('settings')?.get(id) as StoredObject<SettingTypes[K]> | undefined;
  }

  /** Objects of this kind that a snapshot held but that fail their checks. */
  damaged(kind: Kind): Damaged[] {
    return this.setAside.filter((d) => d.kind === kind);
  }

  /** Called for every change from now on; returns the way to stop. */
  watch(listener: (change: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(index: number, data: unknown): Outcome {
    this.appliedIndex = index;
    let command: Command;
    try {
      command = parseCommand(data);
    } catch (error) {
      return { ok: false, reason: (error as Error).message };
    }
    const writes = command.op === 'batch' ? command.writes : [command];
    for (const write of writes) {
      const current = this.get(write.kind, write.id);
      if (write.ifVersion !== undefined && (current?.version ?? 0) !== write.ifVersion) {
        return {
          ok: false,
          reason: `${write.kind}/${write.id} is at version ${current?.version ?? 0}, not ${write.ifVersion}`,
        };
      }
    }
    // Each write is checked against the state as the writes before it in the command leave it.
    const pending = new Map<string, unknown>();
    const lookup = (kind: Kind, id: string) => {
      const key = `${kind}/${id}`;
      return pending.has(key) ? pending.get(key) : this.get(kind, id)?.value;
    };
    // Every object of a kind as the writes so far leave it (deleted ones as undefined).
    const all = (kind: Kind): Array<[string, unknown]> => {
      const ids = new Set(this.list(kind).map((o) => o.id));
      for (const key of pending.keys())
        if (key.startsWith(`${kind}/`)) ids.add(key.slice(kind.length + 1));
      return [...ids].map((id) => [id, lookup(kind, id)]);
    };
    for (const write of writes) {
      const key = `${write.kind}/${write.id}`;
      if (write.op === 'delete') {
        pending.set(key, undefined);
        continue;
      }
      const problem = checkPut(write.kind, write.id, write.value, lookup, all);
      if (problem) return { ok: false, reason: problem };
      pending.set(key, write.value);
    }
    for (const write of writes) this.write(index, write);
    return { ok: true, version: index };
  }

  private write(index: number, write: Write): void {
    const table = this.objects.get(write.kind) as Map<string, StoredObject>;
    const previous = table.get(write.id);
    if (write.op === 'put') {
      const object = { id: write.id, version: index, value: write.value };
      table.set(write.id, object);
      this.notify({ kind: write.kind, id: write.id, object, previous });
    } else if (table.delete(write.id)) {
      this.notify({ kind: write.kind, id: write.id, object: undefined, previous });
    }
  }

  snapshot(): { appliedIndex: number; objects: Array<[Kind, StoredObject[]]> } {
    return { appliedIndex: this.appliedIndex, objects: KINDS.map((k) => [k, this.list(k)]) };
  }

  restore(data: unknown): void {
    const snapshot = (data ?? { appliedIndex: 0, objects: [] }) as ReturnType<
      ClusterState['snapshot']
    >;
    this.objects = new Map(KINDS.map((k) => [k, new Map()]));
    this.setAside = [];
    for (const [kind, objects] of snapshot.objects) {
      const table = this.objects.get(kind);
      if (!table) continue; // a kind this version does not know
      for (const object of objects) {
        const reason = checkObject(kind, object.id, object.value);
        if (reason) this.setAside.push({ kind, id: object.id, reason });
        else table.set(object.id, object);
      }
    }
    this.appliedIndex = snapshot.appliedIndex;
    for (const kind of KINDS)
      for (const object of this.list(kind))
        this.notify({ kind, id: object.id, object, restored: true });
  }

  /** A digest of every object: two replicas with the same digest hold the same state. */
  digest(): string {
    const hash = createHash('sha256');
    for (const kind of KINDS) {
      for (const o of this.list(kind).sort((a, b) => a.id.localeCompare(b.id))) {
        hash.update(`${kind}/${o.id}@${o.version}=${JSON.stringify(o.value)}\n`);
      }
    }
    return hash.digest('hex').slice(0, 16);
  }

  private notify(change: Change): void {
    for (const listener of this.listeners) listener(change);
  }
}
