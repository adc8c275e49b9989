import test from 'ava';
import { filterRows, formatRow } from '../../cli/listing.js';

const rows = [
  { id: 'web.1', state: 'running', node: 'n1', ports: ['80', '443'], labels: { zone: 'a' } },
  { id: 'web.2', state: 'failed', node: 'n2', ports: [], labels: { zone: 'b', disk: 'ssd' } },
  { id: 'db.1', state: 'running', node: 'n2', ports: ['5432'], labels: {} },
];

test('--filter keeps the rows whose field is the value; keys are case-blind', (t) => {
  t.deepEqual(
    filterRows(rows, ['State=running']).map((r) => r.id),
    ['web.1', 'db.1'],
  );
});

test('several filters: every key, any value of one key', (t) => {
  t.deepEqual(
    filterRows(rows, ['node=n2', 'state=running', 'state=failed']).map((r) => r.id),
    ['web.2', 'db.1'],
  );
});

test('a list field matches a value it holds; a map a key or KEY=VALUE', (t) => {
  t.deepEqual(
    filterRows(rows, ['ports=443']).map((r) => r.id),
    ['web.1'],
  );
  t.deepEqual(
    filterRows(rows, ['labels=disk']).map((r) => r.id),
    ['web.2'],
  );
  t.deepEqual(
    filterRows(rows, ['labels=zone=a']).map((r) => r.id),
    ['web.1'],
  );
});

test('a filter without = or on a field no row has is refused, naming the fields', (t) => {
  t.throws(() => filterRows(rows, ['running']), { message: /--filter takes KEY=VALUE/ });
  t.throws(() => filterRows(rows, ['colour=red']), {
    message: /no field "colour"; the fields are id, state, node, ports, labels/,
  });
});

test('--format fills {{.Field}}, joins lists and maps, and gives JSON with {{json}}', (t) => {
  const [row] = rows;
  t.is(formatRow('{{.ID}}\\t{{.State}}', row as object), 'web.1\trunning');
  t.is(formatRow('{{.ports}} {{.labels}}', row as object), '80,443 zone=a');
  t.is(formatRow('{{json .labels}}', row as object), '{"zone":"a"}');
  t.is(JSON.parse(formatRow('{{json .}}', row as object)).id, 'web.1');
  t.throws(() => formatRow('{{.Colour}}', row as object), { message: /no field "Colour"/ });
});
