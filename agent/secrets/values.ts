import {
  isValidValueName,
  KEPT_VERSIONS,
  type SecretRecord,
  type ValueKind,
} from '../../mesh/api/secrets.js';
import { type ServiceRecord, serviceId, updatedRecord } from '../../mesh/api/services.js';
import type { ClusterState, StoredObject, Write } from '../../mesh/state/cluster-state.js';
import type { StateAccess } from '../cluster/state-access.js';
import type { ValueRow } from '../control/api.js';
import { ConflictError, InvalidError, NotFoundError } from '../errors.js';
import type { Keyring } from './keyring.js';

/** The most a secret or config may hold: they are files for configuration, not data. */
const MAX_BYTES = 512 * 1024;

/** A version sealed ahead of the write that stores it (sealing is asynchronous, a write's plan is not). */
export interface SealedValue {
  kind: ValueKind;
  name: string;
  version: SecretRecord['versions'][number] | undefined;
}

const noun = (kind: ValueKind) => (kind === 'secrets' ? 'secret' : 'config');

function decode(kind: ValueKind, name: string, data: unknown): Buffer {
  if (typeof data !== 'string') throw new InvalidError(`${noun(kind)} ${name}: no value given`);
  const plain = Buffer.from(data, 'base64');
  if (plain.length > MAX_BYTES)
    throw new InvalidError(
      `${noun(kind)} ${name}: ${plain.length} bytes is more than ${MAX_BYTES / 1024} KiB`,
    );
  return plain;
}

/** Secrets and configs as the control API and deploys read and write them. */
export class StoredValues {
  constructor(
    private readonly access: StateAccess,
    private readonly keyring: Keyring,
  ) {}

  private get state(): ClusterState {
    return this.access.state;
  }

  private usersOf(kind: ValueKind, name: string): Array<StoredObject<ServiceRecord>> {
    return this.state
      .list('services')
      .filter((s) => (s.value[kind] ?? []).some((ref) => ref.source === name));
  }

  /**
   * Seals a value as the next version of its record, unless the latest already holds it (a
   * redeploy of an unchanged file adds no version and rolls nothing).
   */
  async sealNext(kind: ValueKind, name: string, data: unknown): Promise<SealedValue> {
    if (!isValidValueName(name))
      throw new InvalidError(`${noun(kind)} name "${name}" must be letters, digits, _, . and -`);
    const plain = decode(kind, name, data);
    const latest = this.state.get(kind, name)?.value.versions.at(-1);
    if (latest && (await this.keyring.open(latest.sealed)).equals(plain))
      return { kind, name, version: undefined };
    return {
      kind,
      name,
      version: {
        version: (latest?.version ?? 0) + 1,
        sealed: await this.keyring.seal(plain),
        size: plain.length,
        createdAt: new Date().toISOString(),
      },
    };
  }

  /** The write that stores a sealed version (numbered after what the state holds now). */
  storeWrite(sealed: SealedValue): Write | undefined {
    if (!sealed.version) return undefined;
    const stored = this.state.get(sealed.kind, sealed.name);
    const versions = stored?.value.versions ?? [];
    const version = { ...sealed.version, version: (versions.at(-1)?.version ?? 0) + 1 };
    const value: SecretRecord = {
      name: sealed.name,
      versions: [...versions, version].slice(-KEPT_VERSIONS),
      labels: stored?.value.labels ?? {},
    };
    return {
      op: 'put',
      kind: sealed.kind,
      id: sealed.name,
      value,
      ifVersion: stored?.version ?? 0,
    };
  }

  /** The latest version of a value, given writes about to be made. */
  latestVersion(kind: ValueKind, name: string, writes: Write[]): number | undefined {
    const pending = writes.find((w) => w.op === 'put' && w.kind === kind && w.id === name);
    const record = (pending?.op === 'put' ? pending.value : this.state.get(kind, name)?.value) as
      | SecretRecord
      | undefined;
    return record?.versions.at(-1)?.version;
  }

  async create(kind: ValueKind, name: unknown, data: unknown): Promise<ValueRow> {
    this.access.requireManager();
    if (typeof name === 'string' && this.state.get(kind, name))
      throw new ConflictError(
        `${noun(kind)} ${name} exists: change it with "mesh ${noun(kind)} update ${name}"`,
      );
    const sealed = await this.sealNext(kind, String(name), data);
    await this.access.writeConditionally(() => {
      if (this.state.get(kind, sealed.name))
        throw new ConflictError(`${noun(kind)} ${sealed.name} was created meanwhile`);
      return [this.storeWrite(sealed) as Write];
    });
    return this.inspect(kind, sealed.name);
  }

  /**
   * A new version, and every service using the value rolled to it (a new service version, so a
   * rolling update like any other).
   */
  async update(
    kind: ValueKind,
    name: unknown,
    data: unknown,
  ): Promise<ValueRow & { rolled: string[]; changed: boolean }> {
    const id = this.existing(kind, name);
    this.access.requireManager();
    const sealed = await this.sealNext(kind, id, data);
    let rolled: string[] = [];
    await this.access.writeConditionally(() => {
      const store = this.storeWrite(sealed);
      if (!store) return [];
      const version = this.latestVersion(kind, id, [store]) as number;
      const now = new Date().toISOString();
      const writes: Write[] = [store];
      const users = this.usersOf(kind, id);
      for (const stored of users) {
        const definition = {
          ...stored.value,
          [kind]: (stored.value[kind] ?? []).map((ref) =>
            ref.source === id ? { ...ref, version } : ref,
          ),
        };
        const { record } = updatedRecord(stored.value, definition, now);
        writes.push({
          op: 'put',
          kind: 'services',
          id: stored.id,
          value: record,
          ifVersion: stored.version,
        });
      }
      rolled = users.map((s) => s.id);
      return writes;
    });
    return { ...this.inspect(kind, id), rolled, changed: sealed.version !== undefined };
  }

  async remove(kind: ValueKind, name: unknown): Promise<{ name: string }> {
    const id = this.existing(kind, name);
    await this.access.writeConditionally(() => {
      const users = this.usersOf(kind, id).map((s) => s.id);
      if (users.length > 0)
        throw new ConflictError(`${noun(kind)} ${id} is in use by ${users.join(', ')}`);
      return [{ op: 'delete', kind, id }];
    });
    return { name: id };
  }

  list(kind: ValueKind): ValueRow[] {
    return this.state.list(kind).map((s) => this.inspect(kind, s.id));
  }

  inspect(kind: ValueKind, name: unknown): ValueRow {
    const id = this.existing(kind, name);
    const record = this.state.get(kind, id)?.value as SecretRecord;
    return {
      name: id,
      versions: record.versions.map(({ version, size, createdAt }) => ({
        version,
        size,
        createdAt,
      })),
      services: this.usersOf(kind, id).flatMap(({ value }) =>
        (value[kind] ?? [])
          .filter((ref) => ref.source === id)
          .map((ref) => ({ service: serviceId(value), version: ref.version })),
      ),
    };
  }

  private existing(kind: ValueKind, name: unknown): string {
    if (typeof name !== 'string' || !this.state.get(kind, name))
      throw new NotFoundError(
        `no ${noun(kind)} named "${String(name)}"; see "mesh ${noun(kind)} ls"`,
      );
    return name;
  }
}
