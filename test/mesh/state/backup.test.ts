import test from 'ava';
import { newKey } from '../../../mesh/secrets/sealing.js';
import {
  type BackupContents,
  BackupError,
  openBackup,
  parseBackup,
  restoredObjects,
  sealBackup,
} from '../../../mesh/state/backup.js';
import { nodeRecord } from '../../helpers/records.js';

const votersKey = newKey();
const meta = { createdAt: '2026-11-29T00:00:00.000Z', index: 42 };
const contents: BackupContents = {
  clusterId: 'c1',
  objects: [
    [
      'stacks',
      [
        {
          id: 'shop',
          version: 7,
          value: { name: 'shop', services: [], deployedAt: meta.createdAt },
        },
      ],
    ],
    [
      'settings',
      [
        {
          id: 'network',
          version: 2,
          value: { serviceRange: '10.250.0.0/24', bridgeRange: '10.240.0.0/20' },
        },
      ],
    ],
    ['nodes', [{ id: 'n1', version: 9, value: nodeRecord('n1') }]],
  ],
};
const roundTrip = (file: unknown) => parseBackup(JSON.stringify(file), 'shop.backup');

test('a passphrase backup opens with its passphrase, and carries the voters’ key', (t) => {
  const file = sealBackup({ ...contents, votersKey: votersKey.toString('hex') }, meta, {
    passphrase: 'correct horse battery staple',
  });
  t.like(file, { clusterId: 'c1', index: 42, encryption: { method: 'passphrase', kdf: 'scrypt' } });
  t.deepEqual(file.counts, { stacks: 1, settings: 1, nodes: 1 });
  t.false(JSON.stringify(file).includes('shop"'), 'nothing of the state in the clear');
  const opened = openBackup(roundTrip(file), 'shop.backup', {
    passphrase: 'correct horse battery staple',
  });
  t.is(opened.votersKey, votersKey.toString('hex'));
  t.deepEqual(opened.objects, contents.objects);
});

test('a wrong passphrase, or a changed file, is refused by name', (t) => {
  const file = sealBackup(contents, meta, { passphrase: 'correct horse battery staple' });
  const wrong = t.throws(() =>
    openBackup(file, 'shop.backup', { passphrase: 'another passphrase!' }),
  );
  t.regex(
    wrong?.message ?? '',
    /shop\.backup does not open: wrong passphrase, or the file was changed/,
  );
  // A first character other than the one there (one time in 64 it was already "A").
  const other = file.sealed.data.startsWith('A') ? 'B' : 'A';
  const changed = {
    ...file,
    sealed: { ...file.sealed, data: `${other}${file.sealed.data.slice(1)}` },
  };
  t.throws(
    () => openBackup(changed, 'shop.backup', { passphrase: 'correct horse battery staple' }),
    {
      instanceOf: BackupError,
    },
  );
  t.throws(() => openBackup(file, 'shop.backup', {}), { message: /encrypted with a passphrase/ });
});

test('a short passphrase is refused', (t) => {
  t.throws(() => sealBackup(contents, meta, { passphrase: 'short' }), { message: /at least 12/ });
});

test('a backup sealed with the voters’ key needs that key, and names it', (t) => {
  const file = sealBackup(contents, meta, { votersKey });
  t.is(file.encryption.method, 'voters-key');
  t.throws(() => openBackup(file, 'b', {}), {
    message: /give pki\/secrets\.key of one of its voters/,
  });
  t.throws(() => openBackup(file, 'b', { votersKey: newKey() }), {
    message: /sealed with voters' key/,
  });
  t.deepEqual(openBackup(file, 'b', { votersKey }).objects, contents.objects);
});

test('a file that is not a backup is refused with what it is', (t) => {
  t.throws(() => parseBackup('{"format":"other"}', 'x.json'), {
    message: /x\.json is not a mesh backup \(format "other"/,
  });
  t.throws(() => parseBackup('not json', 'x.json'), { message: /x\.json is not a mesh backup/ });
});

test('a backup holding an object that fails its checks is refused, naming it', (t) => {
  const bad: BackupContents = {
    clusterId: 'c1',
    objects: [['nodes', [{ id: 'n1', version: 1, value: { status: 'odd' } }]]],
  };
  const file = sealBackup(bad, meta, { votersKey });
  t.throws(() => openBackup(file, 'b', { votersKey }), {
    message: /holds objects that fail their checks: nodes\/n1/,
  });
});

test('a restore keeps desired state, not the old machines, nor the old CA unless asked', (t) => {
  const withCa: BackupContents = {
    clusterId: 'c1',
    objects: contents.objects.map(([kind, list]) => [
      kind,
      kind === 'settings' ? [{ id: 'ca', version: 3, value: {} }, ...list] : list,
    ]),
  };
  const kinds = (keepCa: boolean) =>
    restoredObjects(withCa, keepCa).map(
      ([kind, list]) => `${kind}:${list.map((o) => o.id).join(',')}`,
    );
  t.deepEqual(kinds(false), ['stacks:shop', 'settings:network']);
  t.deepEqual(kinds(true), ['stacks:shop', 'settings:ca,network']);
});
