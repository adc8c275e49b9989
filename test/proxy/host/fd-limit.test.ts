import test from 'ava';
import { connectionBudget, parseFdLimit } from '../../../proxy/host/fd-limit.js';

test('the open-files limits are read from /proc/<pid>/limits', (t) => {
  const text = [
    'Limit                     Soft Limit           Hard Limit           Units',
    'Max open files            1024                 524288               files',
  ].join('\n');
  t.deepEqual(parseFdLimit(text), { soft: 1024, hard: 524288 });
  t.deepEqual(
    parseFdLimit('Max open files unlimited unlimited files')?.hard,
    Number.MAX_SAFE_INTEGER,
  );
  t.is(parseFdLimit('nothing here'), undefined);
});

test('a listener may hold half the open files, never fewer than 64', (t) => {
  t.is(connectionBudget({ soft: 1024, hard: 4096 }), 512);
  t.is(connectionBudget({ soft: 40, hard: 40 }), 64);
  t.is(connectionBudget(undefined), 512);
});
