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
import { crc32 } from './crc32.js';
import type { Entry, HardState, Membership, Snapshot } from './types.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const HEADER = 8; // u32 length, u32 CRC-32 of the payload

type Record = { kind: 'hard'; state: HardState } | { kind: 'entry'; entry: Entry };

export interface Stored {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
}

function frame(record: Record): Buffer {
  const payload = packr.pack(record);
  const header = Buffer.alloc(HEADER);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([header, payload]);
}

/** Writes a file so that a crash leaves either the old one or the new one, never half of either. */
function writeDurably(path: string, data: Buffer): void {
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
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
 * Raft's stable storage in a directory: `snapshot` (replaced atomically) and `wal`, an append-only
 * file of checksummed records (hard states and entries, one each), fsynced before save() returns.
 * A torn or corrupt tail, as a crash mid-write leaves, is cut off at start-up and said so in the
 * log: never read as data, never silently dropped.
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
    rmSync(`${snapshotPath}.tmp`, { force: true }); // an interrupted snapshot write
    const snapshot: Snapshot = existsSync(snapshotPath)
      ? (packr.unpack(readFileSync(snapshotPath)) as Snapshot)
      : { index: 0, term: 0, membership: initial, data: null };
    const walPath = join(dir, 'wal');
    const stored: Stored = { hardState: { term: 0, vote: null, commit: 0 }, snapshot, entries: [] };
    // Append mode: every write lands at the end, whatever was read or cut before.
    const fd = openSync(walPath, 'a+', 0o600);
    const valid = RaftStorage.replay(readFileSync(walPath), stored);
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
    while (offset + HEADER <= data.length) {
      const length = data.readUInt32LE(offset);
      const end = offset + HEADER + length;
      if (end > data.length) break;
      const payload = data.subarray(offset + HEADER, end);
      if (crc32(payload) !== data.readUInt32LE(offset + 4)) break;
      const record = packr.unpack(payload) as Record;
      if (record.kind === 'hard') stored.hardState = record.state;
      else RaftStorage.place(stored, [record.entry]);
      offset = end;
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

  /** Persists what a Ready asks to persist; durable when this returns. */
  save(hardState: HardState | undefined, entries: Entry[], snapshot?: Snapshot): void {
    if (snapshot) this.saveSnapshot(snapshot);
    const records: Buffer[] = [];
    // One record (and checksum) per entry: recovery keeps every entry that was written whole.
    RaftStorage.place(this.stored, entries);
    for (const entry of entries) records.push(frame({ kind: 'entry', entry }));
    if (hardState) {
      this.stored.hardState = hardState;
      records.push(frame({ kind: 'hard', state: hardState }));
    }
    if (records.length === 0) return;
    writeSync(this.fd, Buffer.concat(records));
    fsyncSync(this.fd);
  }

  /**
   * Stores a snapshot and drops the entries it covers: the snapshot file is replaced atomically,
   * then the WAL is rewritten (also atomically) with only what follows it.
   */
  saveSnapshot(snapshot: Snapshot): void {
    writeDurably(join(this.dir, 'snapshot'), packr.pack(snapshot));
    this.stored.snapshot = snapshot;
    this.stored.entries = this.stored.entries.filter((e) => e.index > snapshot.index);
    const records = [frame({ kind: 'hard', state: this.stored.hardState })];
    for (const entry of this.stored.entries) records.push(frame({ kind: 'entry', entry }));
    closeSync(this.fd);
    const walPath = join(this.dir, 'wal');
    writeDurably(walPath, Buffer.concat(records));
    this.fd = openSync(walPath, 'a+');
  }

  close(): void {
    closeSync(this.fd);
  }
}
