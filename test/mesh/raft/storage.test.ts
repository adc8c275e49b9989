import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Packr } from 'msgpackr';
import { RaftStorage, StorageDamageError } from '../../../mesh/raft/storage.js';
import type { Entry } from '../../../mesh/raft/types.js';
import { captureLogs } from '../../helpers/logs.js';

const membership = { voters: ['a'], learners: [] };
const entry = (index: number, term: number, data = `cmd${index}`): Entry => ({
  index,
  term,
  kind: 'command',
  data,
});

function directory(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-raft-storage-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('what was saved is there after reopening', (t) => {
  const dir = directory(t);
  const storage = RaftStorage.open(dir, membership, captureLogs('a').log);
  storage.save({ term: 1, vote: 'a', commit: 0 }, [entry(1, 1), entry(2, 1)]);
  storage.save({ term: 1, vote: 'a', commit: 2 }, []);
  storage.close();
  const reopened = RaftStorage.open(dir, membership, captureLogs('a').log);
  t.deepEqual(reopened.state.hardState, { term: 1, vote: 'a', commit: 2 });
  t.deepEqual(
    reopened.state.entries.map((e) => e.index),
    [1, 2],
  );
  reopened.close();
});

test('entries replace the log from their first index on', (t) => {
  const dir = directory(t);
  const storage = RaftStorage.open(dir, membership, captureLogs('a').log);
  storage.save(undefined, [entry(1, 1), entry(2, 1), entry(3, 1)]);
  storage.save(undefined, [entry(2, 2, 'new')]);
  storage.close();
  const reopened = RaftStorage.open(dir, membership, captureLogs('a').log);
  t.deepEqual(
    reopened.state.entries.map((e) => `${e.index}@${e.term}`),
    ['1@1', '2@2'],
  );
  reopened.close();
});

test('a torn tail is cut off, said in the log, and appending goes on after it', (t) => {
  const dir = directory(t);
  const storage = RaftStorage.open(dir, membership, captureLogs('a').log);
  storage.save({ term: 1, vote: 'a', commit: 1 }, [entry(1, 1)]);
  storage.close();
  const wal = join(dir, 'wal');
  const good = statSync(wal).size;
  appendFileSync(wal, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 9, 9])); // a record cut short by a crash
  const logs = captureLogs('a');
  const reopened = RaftStorage.open(dir, membership, logs.log);
  t.deepEqual(
    reopened.state.entries.map((e) => e.index),
    [1],
  );
  const warning = logs.lines.find(
    (l) => l.msg === 'raft log: torn or corrupt tail cut off at the last valid record',
  );
  t.like(warning, { validBytes: good, droppedBytes: 10, lastIndex: 1 });
  t.is(statSync(wal).size, good);
  reopened.save(undefined, [entry(2, 1)]);
  reopened.close();
  const again = RaftStorage.open(dir, membership, captureLogs('a').log);
  t.deepEqual(
    again.state.entries.map((e) => e.index),
    [1, 2],
  );
  again.close();
});

test('a corrupt entry ends the valid log there; the entries before it survive', (t) => {
  const dir = directory(t);
  const storage = RaftStorage.open(dir, membership, captureLogs('a').log);
  storage.save(undefined, [entry(1, 1), entry(2, 1), entry(3, 1)]); // one Ready, three records
  storage.close();
  const wal = join(dir, 'wal');
  const bytes = readFileSync(wal);
  bytes.writeUInt8((bytes.at(-3) ?? 0) ^ 0xff, bytes.length - 3); // corrupt the last record
  writeFileSync(wal, bytes);
  const logs = captureLogs('a');
  const reopened = RaftStorage.open(dir, membership, logs.log);
  t.deepEqual(
    reopened.state.entries.map((e) => e.index),
    [1, 2],
  );
  t.truthy(logs.lines.find((l) => l.msg.startsWith('raft log: torn or corrupt tail')));
  reopened.close();
});

test('a snapshot replaces the entries it covers, atomically', (t) => {
  const dir = directory(t);
  const storage = RaftStorage.open(dir, membership, captureLogs('a').log);
  storage.save({ term: 2, vote: 'a', commit: 3 }, [
    entry(1, 1),
    entry(2, 2),
    entry(3, 2),
    entry(4, 2),
  ]);
  storage.saveSnapshot({ index: 3, term: 2, membership, data: { state: 'at 3' } });
  storage.close();
  writeFileSync(join(dir, 'snapshot.tmp'), 'half a snapshot from a crash');
  const reopened = RaftStorage.open(dir, membership, captureLogs('a').log);
  t.like(reopened.state.snapshot, { index: 3, term: 2, data: { state: 'at 3' } });
  t.deepEqual(
    reopened.state.entries.map((e) => e.index),
    [4],
  );
  t.deepEqual(reopened.state.hardState, { term: 2, vote: 'a', commit: 3 });
  reopened.close();
});

/** A WAL of ten entries, closed; returns its path and size. */
function tenEntries(dir: string): { wal: string; size: number } {
  const storage = RaftStorage.open(dir, membership, captureLogs('a').log);
  for (let i = 1; i <= 10; i++) storage.save({ term: 1, vote: 'a', commit: i - 1 }, [entry(i, 1)]);
  storage.close();
  const wal = join(dir, 'wal');
  return { wal, size: statSync(wal).size };
}

test('damage before the tail refuses to open, naming the file, the offset and what to do', (t) => {
  const dir = directory(t);
  const { wal, size } = tenEntries(dir);
  const bytes = readFileSync(wal);
  const middle = Math.floor(size / 2);
  bytes.writeUInt32LE((bytes.readUInt32LE(middle) ^ 0xdeadbeef) >>> 0, middle);
  writeFileSync(wal, bytes);
  const error = t.throws(() => RaftStorage.open(dir, membership, captureLogs('a').log), {
    instanceOf: StorageDamageError,
  });
  t.regex(error?.message ?? '', new RegExp(`raft log ${wal} is damaged at byte \\d+ `));
  t.regex(error?.message ?? '', /mesh node rm/);
  t.is(statSync(wal).size, size, 'nothing is cut off');
});

test('a damaged length field in the middle is damage, not a torn tail', (t) => {
  const dir = directory(t);
  const { wal, size } = tenEntries(dir);
  const bytes = readFileSync(wal);
  bytes.writeUInt32LE(2 ** 31, 0); // the first record now claims to run past the end
  writeFileSync(wal, bytes);
  t.throws(() => RaftStorage.open(dir, membership, captureLogs('a').log), {
    instanceOf: StorageDamageError,
    message: /damaged at byte 0 /,
  });
  t.is(statSync(wal).size, size);
});

test('a tail of zeros, as a crash can leave, is cut off like any torn tail', (t) => {
  const dir = directory(t);
  const { wal, size } = tenEntries(dir);
  appendFileSync(wal, Buffer.alloc(4096));
  const reopened = RaftStorage.open(dir, membership, captureLogs('a').log);
  t.is(reopened.state.entries.length, 10);
  t.is(statSync(wal).size, size);
  reopened.close();
});

test('a damaged snapshot refuses to open', (t) => {
  const dir = directory(t);
  const storage = RaftStorage.open(dir, membership, captureLogs('a').log);
  storage.save({ term: 1, vote: 'a', commit: 2 }, [entry(1, 1), entry(2, 1)]);
  storage.saveSnapshot({ index: 2, term: 1, membership, data: { state: 'at 2' } });
  storage.close();
  const path = join(dir, 'snapshot');
  const bytes = readFileSync(path);
  bytes.writeUInt8((bytes.at(-1) ?? 0) ^ 0x01, bytes.length - 1);
  writeFileSync(path, bytes);
  t.throws(() => RaftStorage.open(dir, membership, captureLogs('a').log), {
    instanceOf: StorageDamageError,
    message: new RegExp(`raft snapshot ${path} is damaged`),
  });
});

test('a snapshot written before snapshots had a checksum still opens', (t) => {
  const dir = directory(t);
  const snapshot = { index: 4, term: 2, membership, data: { state: 'at 4' } };
  writeFileSync(join(dir, 'snapshot'), new Packr({ useRecords: false }).pack(snapshot));
  const reopened = RaftStorage.open(dir, membership, captureLogs('a').log);
  t.like(reopened.state.snapshot, { index: 4, term: 2, data: { state: 'at 4' } });
  reopened.close();
});
