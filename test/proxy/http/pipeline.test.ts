import test from 'ava';
import { Pipeline } from '../../../proxy/http/pipeline.js';

test('requests are served one at a time, in the order they came', (t) => {
  const pipeline = new Pipeline(10);
  const started: number[] = [];
  const overs: Array<() => void> = [];
  for (const n of [1, 2, 3])
    pipeline.add((over) => {
      started.push(n);
      overs.push(over);
    });
  t.deepEqual(started, [1]);
  overs[0]?.();
  t.deepEqual(started, [1, 2]);
  overs[1]?.();
  overs[1]?.(); // said twice (finish, then close): the third still starts once
  t.deepEqual(started, [1, 2, 3]);
});

test('past the limit nothing is queued', (t) => {
  const pipeline = new Pipeline(2);
  t.true(pipeline.add(() => {})); // served now
  t.true(pipeline.add(() => {}));
  t.true(pipeline.add(() => {}));
  t.false(pipeline.add(() => {}));
});

test('what waits when the connection goes is never served', (t) => {
  const pipeline = new Pipeline(10);
  let over = () => {};
  let served = 0;
  pipeline.add((done) => {
    over = done;
  });
  pipeline.add(() => {
    served += 1;
  });
  pipeline.clear();
  over();
  t.is(served, 0);
});
