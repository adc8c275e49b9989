import { Writable } from 'node:stream';
import test from 'ava';
import { createLogger, prettyLine } from '../../mesh/log.js';

test('a log line for a person: time, level, message, then the fields as key=value', (t) => {
  const line = JSON.stringify({
    level: 40,
    time: Date.parse('2026-11-29T10:11:12.345Z'),
    node: 'n1',
    msg: 'task not ready',
    task: 'shop.web.1.ab12',
    probe: 'GET /ready: 503',
    ports: [8080],
  });
  t.is(
    prettyLine(line),
    '10:11:12.345 WARN  task not ready task=shop.web.1.ab12 probe="GET /ready: 503" ports=[8080]\n',
  );
});

test('by default a log not going to a terminal is JSON, one object per line, with the node', (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  createLogger({ nodeId: 'n7', destination: sink }).info({ task: 't1' }, 'task started');
  t.like(JSON.parse(lines[0] ?? '{}'), { node: 'n7', msg: 'task started', task: 't1', level: 30 });
});
