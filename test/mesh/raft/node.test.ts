import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { RaftNode } from '../../../mesh/raft/node.js';
import { RaftStorage, StorageWriteError } from '../../../mesh/raft/storage.js';
import { ClusterState } from '../../../mesh/state/cluster-state.js';
import type { Handler } from '../../../mesh/transport/channel.js';
import type { Transport } from '../../../mesh/transport/transport.js';
import { captureLogs } from '../../helpers/logs.js';
import { eventually } from '../../helpers/poll.js';

/**
 * Node `a` of the given voters over a data dir of its own (removed after the test; stopping the
 * node is the test's), with only
 * the part of the transport the node uses: handlers are kept for the test to hand messages in.
 */
function nodeA(t: ExecutionContext, voters: string[], options: { timeoutMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-raft-node-'));
  const logs = captureLogs('a');
  const handlers = new Map<string, Handler>();
  const transport = {
    nodeId: 'a',
    handle: (type: string, h: Handler) => handlers.set(type, h),
  } as unknown as Transport;
  const storage = RaftStorage.open(dir, { voters, learners: [] }, logs.log);
  const machine = new ClusterState();
  const node = new RaftNode({
    transport,
    storage,
    machine,
    log: logs.log,
    addressOf: () => undefined,
    ...options,
  });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { node, storage, logs, handlers, machine };
}

test('a stopped node ignores the Raft messages still arriving while the transport closes', (t) => {
  const { node, logs, handlers } = nodeA(t, ['a', 'b']);
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

test('a write that cannot be stored is refused to its proposer at once, saying why; the disk back, it is applied', async (t) => {
  const { node, storage, logs, machine } = nodeA(t, ['a'], { timeoutMs: 100 });
  t.teardown(() => node.stop()); // before the data dir goes (teardowns run last first)
  node.start();
  await eventually(() => node.raft.role === 'leader', { what: 'the only voter leading' });
  // Saves fail (a full disk) until the test says otherwise.
  const save = storage.save.bind(storage);
  let full = true;
  storage.save = (...args) => {
    if (full)
      throw new StorageWriteError('/data/raft', 'ENOSPC', 'ENOSPC: no space left on device, write');
    return save(...args);
  };
  // Before, the write's waiter was left to time out with nobody listening: an unhandled
  // rejection, which ends the agent.
  await t.throwsAsync(node.propose({ op: 'put', kind: 'stacks', id: 'x', value: {} }), {
    message:
      "node a could not store it: could not write Raft's log in /data/raft: ENOSPC: no space left on device, write",
  });
  // Nothing is left waiting whose timer would reject it later, with nobody listening.
  t.is(node.waiting, 0);
  t.is(logs.lines.filter((l) => l.level === 50).length, 1, 'said once, however many ticks fail');
  const index = node.raft.log.lastIndex;
  t.true(machine.appliedIndex < index);
  full = false;
  // Offered to the disk again at the next tick: stored, committed and applied.
  await eventually(() => machine.appliedIndex >= index || undefined, { what: 'the write applied' });
  t.true(
    storage.state.entries.some((e) => e.index === index),
    'and it is in the log on disk',
  );
  t.true(logs.lines.some((l) => l.msg === "Raft's log can be written again"));
});
