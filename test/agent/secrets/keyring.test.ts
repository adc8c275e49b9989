import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import type { StateAccess } from '../../../agent/cluster/state-access.js';
import { Keyring } from '../../../agent/secrets/keyring.js';
import type { RaftNode } from '../../../mesh/raft/node.js';
import type { ClusterState } from '../../../mesh/state/cluster-state.js';
import type { Transport } from '../../../mesh/transport/transport.js';

const NODE = 'node-1';

/** A keyring on a lone voter, over a settings map standing in for the replicated state. */
function keyringOn(dataDir: string, settings: Map<string, { value: unknown; version: number }>) {
  const state = { setting: (id: string) => settings.get(id), get: () => undefined };
  const access = {
    propose: async (change: { id: string; value: unknown }) => {
      if (!settings.has(change.id)) settings.set(change.id, { value: change.value, version: 1 });
      return { ok: true };
    },
  };
  return new Keyring({
    nodeId: NODE,
    dataDir,
    state: state as unknown as ClusterState,
    raft: { membership: { voters: [NODE], learners: [] } } as unknown as RaftNode,
    access: access as unknown as StateAccess,
    transport: { handle: () => {} } as unknown as Transport,
    log: pino({ level: 'silent' }),
    mayHold: () => true,
    onHeld: () => {},
  });
}

test('the CA sealed as the first secret is made: one voters’ key seals both, and both open after a restart', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mesh-keyring-'));
  mkdirSync(join(dataDir, 'pki'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const settings = new Map<string, { value: unknown; version: number }>();
  const keyring = keyringOn(dataDir, settings);
  const [ca, secret] = await Promise.all([
    keyring.voterSeal(Buffer.from('the CA key')),
    keyring.seal(Buffer.from('the first secret')),
  ]);
  settings.set('ca', { value: { keyId: ca.keyId }, version: 1 });
  const dataKey = settings.get('secrets-key')?.value as { keyId: string };
  t.is(dataKey.keyId, ca.keyId, 'the data key is sealed with the key that sealed the CA');

  const restarted = keyringOn(dataDir, settings);
  t.is((await restarted.voterOpen(ca)).toString(), 'the CA key');
  t.is((await restarted.open(secret)).toString(), 'the first secret');
});
