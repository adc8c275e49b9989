import test from 'ava';
import fc from 'fast-check';
import {
  DatagramReader,
  frameDatagram,
  MAX_DATAGRAM_BYTES,
} from '../../../proxy/l4/datagram-frames.js';
import { type Flow, FlowTable } from '../../../proxy/l4/udp-flows.js';

const flow = (taskId: string, lastSeen: number): Flow => ({ taskId, lastSeen });

test('a flow is kept while datagrams pass, and forgotten once idle for the timeout', (t) => {
  const flows = new FlowTable<Flow>(1000);
  const a = flow('t1', 0);
  flows.add('a', a);
  flows.touch(a, 900);
  t.deepEqual(flows.expire(1800), [], 'touched 900 ms ago');
  t.deepEqual(flows.expire(1900), [a]);
  t.is(flows.get('a'), undefined);
});

test('flows to tasks no longer listed are ended; the others stay', (t) => {
  const flows = new FlowTable<Flow>(1000);
  const [a, b] = [flow('t1', 0), flow('t2', 0)];
  flows.add('a', a);
  flows.add('b', b);
  t.deepEqual(flows.retain(new Set(['t2'])), [a]);
  t.is(flows.size, 1);
  t.is(flows.get('b'), b);
});

test('a flow is deleted only while it is the one under its key', (t) => {
  const flows = new FlowTable<Flow>(1000);
  const [old, next] = [flow('t1', 0), flow('t2', 0)];
  flows.add('a', old);
  flows.add('a', next);
  t.false(flows.delete('a', old), 'a flow replaced under the same client');
  t.is(flows.get('a'), next);
  t.true(flows.delete('a', next));
});

test('datagrams framed on a stream come back whole and in order, however the stream cuts them', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 10 }),
      (payloads, cuts) => {
        const stream = Buffer.concat(payloads.map((p) => frameDatagram(Buffer.from(p))));
        const reader = new DatagramReader();
        const read: Buffer[] = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const size = cuts[i % cuts.length] as number;
          read.push(...reader.push(stream.subarray(at, at + size)));
          at += size;
        }
        t.deepEqual(
          read.map((b) => [...b]),
          payloads.map((p) => [...p]),
        );
      },
    ),
  );
});

test('an empty datagram is a datagram; one over the UDP limit is refused', (t) => {
  const reader = new DatagramReader();
  t.deepEqual(reader.push(frameDatagram(Buffer.alloc(0))), [Buffer.alloc(0)]);
  t.throws(() => frameDatagram(Buffer.alloc(MAX_DATAGRAM_BYTES + 1)), { instanceOf: RangeError });
});
