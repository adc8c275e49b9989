import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { RaftNode } from '../../../mesh/raft/node.js';
import { RaftStorage } from '../../../mesh/raft/storage.js';
import { ClusterState } from '../../../mesh/state/cluster-state.js';
import type { Handler } from '../../../mesh/transport/channel.js';
import type { Transport } from '../../../mesh/transport/transport.js';
import { captureLogs } from '../../helpers/logs.js';

test('a stopped node ignores the Raft messages still arriving while the transport closes', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-raft-node-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logs = captureLogs('a');
  const handlers = new Map<string, Handler>();
  // Only the part of the transport the node uses; messages are handed in directly.
  const transport = {
    nodeId: 'a',
    handle: (type: string, h: Handler) => handlers.set(type, h),
  } as unknown as Transport;
  const storage = RaftStorage.open(dir, { voters: ['a', 'b'], learners: [] }, logs.log);
  const node = new RaftNode({
    transport,
    storage,
    machine: new ClusterState(),
    log: logs.log,
    addressOf: () => undefined,
  });
  node.stop(); // closes the storage
  const vote = {
    from: 'b',
    to: 'a',
    term: 5,
    type: 'vote',
    lastIndex: 9,
    lastTerm: 4,
    transfer: false,
  };
  t.notThrows(() => handlers.get('raft')?.(vote, { nodeId: 'b', serial: '1', remote: 'x' }));
  t.is(node.raft.term, 0, 'the vote request was not processed');
  t.false(logs.lines.some((l) => l.level >= 40));
});
