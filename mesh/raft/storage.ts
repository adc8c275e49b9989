import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import type { Logger } from 'pino';
import { UserError } from '../user-error.js';
import { crc32 } from './crc32.js';
import type { Entry, HardState, Membership, Snapshot } from './types.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const HEADER = 8; // u32 length, u32 CRC-32 of the payload
// The snapshot file: this, then a record as in the WAL. A file without it is from before mesh 0.1.1.
const SNAPSHOT_MAGIC = Buffer.from('mesh-snapshot-1\n');

type Record = { kind: 'hard'; state: HardState } | { kind: 'entry'; entry: Entry };

/**
 * Raft's files are damaged somewhere other than a torn tail: acknowledged entries may be gone, so
 * the node must not start on them (it could vote for, or become, a leader without them).
 */
export class StorageDamageError extends UserError {
  override name = 'StorageDamageError';
}

/**
 * A write to Raft's files failed (the disk is full, read-only, or failing): nothing of it was
 * kept, so the files hold exactly what they held before it, and the write can be tried again.
 */
export class StorageWriteError extends Error {
  override name = 'StorageWriteError';
  constructor(
    readonly dir: string,
    readonly code: string | undefined,
    reason: string,
  ) {
    super(`could not write Raft's log in ${dir}: ${reason}`);
  }
}

/** The error for a failed write to `dir`, from what the system said. */
function writeFailure(dir: string, error: unknown): StorageWriteError {
  const { code, message } = error as NodeJS.ErrnoException;
  return new StorageWriteError(dir, code, message);
}

/** Writes all of `data` at the file's end (write(2) may take less than it is given). */
function writeWhole(fd: number, data: Buffer): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
}

const WHAT_TO_DO =
  'this node will not start on it, so that it never votes or serves without entries it acknowledged. ' +
  'Remove it from the cluster ("mesh node rm NODE" on another node), move its data dir away, and join this machine again with a new token';

export interface Stored {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
}

function frame(value: unknown): Buffer {
  const payload = packr.pack(value);
  const header = Buffer.alloc(HEADER);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([header, payload]);
}

/** The payload of a whole, checksummed record at offset, or undefined when there is none. */
function payloadAt(data: Buffer, offset: number): Buffer | undefined {
  if (offset + HEADER > data.length) return undefined;
  const length = data.readUInt32LE(offset);
  const end = offset + HEADER + length;
  // Zero-length: what a file extended by a crash but never written reads as.
  if (length === 0 || end > data.length) return undefined;
  const payload = data.subarray(offset + HEADER, end);
  return crc32(payload) === data.readUInt32LE(offset + 4) ? payload : undefined;
}

/** A WAL record at offset: whole, checksummed, and of a known shape. */
function recordAt(data: Buffer, offset: number): { record: Record; end: number } | undefined {
  const payload = payloadAt(data, offset);
  if (!payload) return undefined;
  let record: Record;
  try {
    record = packr.unpack(payload) as Record;
  } catch {
    return undefined; // a checksum that matches by chance over bytes that are no record
  }
  const known =
    (record?.kind === 'hard' && typeof record.state?.term === 'number') ||
    (record?.kind === 'entry' && Number.isSafeInteger(record.entry?.index));
  return known ? { record, end: offset + HEADER + payload.length } : undefined;
}

/** Where the first whole record after offset starts, if any: damage is not a torn tail then. */
function nextRecord(data: Buffer, offset: number): number | undefined {
  for (let at = offset + 1; at + HEADER < data.length; at++) if (recordAt(data, at)) return at;
  return undefined;
}

function readSnapshot(path: string, initial: Membership): Snapshot {
  if (!existsSync(path)) return { index: 0, term: 0, membership: initial, data: null };
  const data = readFileSync(path);
  const damaged = (why: string) =>
    new StorageDamageError(`raft snapshot ${path} is damaged (${why}): ${WHAT_TO_DO}`);
  let snapshot: Snapshot;
  if (data.subarray(0, SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC)) {
    const payload = payloadAt(data, SNAPSHOT_MAGIC.length);
    if (!payload || SNAPSHOT_MAGIC.length + HEADER + payload.length !== data.length)
      throw damaged('its checksum or length does not match its contents');
    snapshot = packr.unpack(payload) as Snapshot;
  } else {
    try {
      snapshot = packr.unpack(data) as Snapshot;
    } catch (error) {
      throw damaged((error as Error).message);
    }
  }
  if (
    !Number.isSafeInteger(snapshot?.index) ||
    !Number.isSafeInteger(snapshot.term) ||
    !Array.isArray(snapshot.membership?.voters) ||
    !Array.isArray(snapshot.membership?.learners)
  )
    throw damaged('it is not a snapshot');
  return snapshot;
}

/**
 * Writes a file so that a crash leaves either the old one or the new one, never half of either; a
 * failed write leaves the old one and no temporary file.
 */
function writeDurably(path: string, data: Buffer): void {
  const temporary = `${path}.tmp`;
  try {
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeWhole(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    rmSync(temporary, { force: true });
    throw writeFailure(join(path, '..'), error);
  }
  renameSync(temporary, path);
  const dir = openSync(join(path, '..'), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * Raft's stable storage in a directory: `snapshot` (checksummed, replaced atomically) and `wal`, an
 * append-only file of checksummed records (hard states and entries, one each), fsynced before
 * save() returns. A torn tail — the last record incomplete or failing its checksum, with nothing
 * whole after it, as a crash mid-write leaves — is cut off at start-up and said so in the log.
 * Damage anywhere else, in the WAL or the snapshot, refuses to open (StorageDamageError): never
 * read as data, never silently dropped.
 */
export class RaftStorage {
  private fd: number;
  private stored: Stored;

  private constructor(
    private readonly dir: string,
    stored: Stored,
    fd: number,
  ) {
    this.stored = stored;
    this.fd = fd;
  }

  static open(dir: string, initial: Membership, log: Logger): RaftStorage {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const snapshotPath = join(dir, 'snapshot');
    const walPath = join(dir, 'wal');
    // Interrupted atomic writes: the files they were replacing are whole.
    rmSync(`${snapshotPath}.tmp`, { force: true });
    rmSync(`${walPath}.tmp`, { force: true });
    const snapshot = readSnapshot(snapshotPath, initial);
    const stored: Stored = { hardState: { term: 0, vote: null, commit: 0 }, snapshot, entries: [] };
    const data = existsSync(walPath) ? readFileSync(walPath) : Buffer.alloc(0);
    const valid = RaftStorage.replay(data, stored);
    if (valid < data.length) {
      const next = nextRecord(data, valid);
      if (next !== undefined)
        throw new StorageDamageError(
          `raft log ${walPath} is damaged at byte ${valid} (a record there is not whole or fails its checksum, and whole records follow from byte ${next}): ${WHAT_TO_DO}`,
        );
    }
    // Append mode: every write lands at the end, whatever was read or cut before.
    const fd = openSync(walPath, 'a+', 0o600);
    const size = fstatSync(fd).size;
    if (valid < size) {
      log.warn(
        {
          wal: walPath,
          validBytes: valid,
          droppedBytes: size - valid,
          lastIndex: stored.entries.at(-1)?.index ?? snapshot.index,
        },
        'raft log: torn or corrupt tail cut off at the last valid record',
      );
      ftruncateSync(fd, valid);
      fsyncSync(fd);
    }
    return new RaftStorage(dir, stored, fd);
  }

  /** Applies records in order; returns how many bytes of the file were valid. */
  private static replay(data: Buffer, stored: Stored): number {
    let offset = 0;
    for (let at = recordAt(data, 0); at; at = recordAt(data, offset)) {
      if (at.record.kind === 'hard') stored.hardState = at.record.state;
      else RaftStorage.place(stored, [at.record.entry]);
      offset = at.end;
    }
    return offset;
  }

  /** Entries replace whatever the log held from their first index on. */
  private static place(stored: Stored, entries: Entry[]): void {
    const first = entries[0]?.index;
    if (first === undefined) return;
    stored.entries = stored.entries.filter(
      (e) => e.index < first && e.index > stored.snapshot.index,
    );
    for (const entry of entries)
      if (entry.index > stored.snapshot.index) stored.entries.push(entry);
  }

  get snapshotIndex(): number {
    return this.stored.snapshot.index;
  }

  get state(): Stored {
    return { ...this.stored, entries: [...this.stored.entries] };
  }

  /**
   * Persists what a Ready asks to persist; durable when this returns, true when anything was
   * written. On a StorageWriteError nothing of it was kept (a record written in part is cut off
   * again), on disk or here.
   */
  save(hardState: HardState | undefined, entries: Entry[], snapshot?: Snapshot): boolean {
    if (snapshot) this.saveSnapshot(snapshot);
    const records: Buffer[] = [];
    // One record (and checksum) per entry: recovery keeps every entry that was written whole.
    for (const entry of entries) records.push(frame({ kind: 'entry', entry }));
    if (hardState) records.push(frame({ kind: 'hard', state: hardState }));
    if (records.length === 0) return snapshot !== undefined;
    const size = fstatSync(this.fd).size;
    try {
      writeWhole(this.fd, Buffer.concat(records));
      fsyncSync(this.fd);
    } catch (error) {
      // Cutting back needs no space: the file ends where the last whole save ended.
      try {
        ftruncateSync(this.fd, size);
      } catch {
        // Left as written: the next start cuts a torn tail off, and nothing after it was kept.
      }
      throw writeFailure(this.dir, error);
    }
    RaftStorage.place(this.stored, entries);
    if (hardState) this.stored.hardState = hardState;
    return true;
  }

  /**
   * Stores a snapshot and drops the entries it covers: the snapshot file is replaced atomically,
   * then the WAL is rewritten (also atomically) with only what follows it.
   */
  saveSnapshot(snapshot: Snapshot): void {
    writeDurably(join(this.dir, 'snapshot'), Buffer.concat([SNAPSHOT_MAGIC, frame(snapshot)]));
    // From here the snapshot is on disk: entries it covers are skipped when the WAL is read, so
    // a WAL that could not be rewritten (below) is still read right.
    this.stored.snapshot = snapshot;
    const entries = this.stored.entries.filter((e) => e.index > snapshot.index);
    const records = [frame({ kind: 'hard', state: this.stored.hardState })];
    for (const entry of entries) records.push(frame({ kind: 'entry', entry }));
    const walPath = join(this.dir, 'wal');
    writeDurably(walPath, Buffer.concat(records));
    // The old descriptor points at the file the rename replaced.
    closeSync(this.fd);
    this.fd = openSync(walPath, 'a+');
    this.stored.entries = entries;
  }

  /**
   * Quorum is lost for good: this node's log gets a configuration in which it is the only voter
   * (etcd's --force-new-cluster). It then elects itself and commits what its log holds; nothing
   * it holds is dropped.
   */
  forceSoleVoter(nodeId: string): void {
    const { entries, snapshot } = this.stored;
    const last = entries.at(-1) ?? { index: snapshot.index, term: snapshot.term };
    const membership: Membership = { voters: [nodeId], learners: [] };
    this.save(undefined, [
      { index: last.index + 1, term: last.term, kind: 'config', data: membership },
    ]);
  }

  /** The voters of the latest configuration the log holds. */
  get voters(): string[] {
    const configs = this.stored.entries.filter((e) => e.kind === 'config');
    return ((configs.at(-1)?.data as Membership | undefined) ?? this.stored.snapshot.membership)
      .voters;
  }

  close(): void {
    closeSync(this.fd);
  }
}
