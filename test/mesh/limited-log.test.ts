import test from 'ava';
import { LimitedLog } from '../../mesh/limited-log.js';
import { captureLogs } from '../helpers/logs.js';

/** A limited log on a clock the test moves, and what it wrote (lines arrive a tick later). */
function limitedLog(perMinute: number) {
  const logs = captureLogs('n1');
  let now = 0;
  const limited = new LimitedLog(logs.log, perMinute, () => now);
  const written = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    return logs.lines.map(({ msg, remote, source, leftOut }) => ({ msg, remote, source, leftOut }));
  };
  return { limited, written, later: (ms: number) => (now += ms) };
}

test('each source gets a few lines a minute; what is left out is told once the minute is over', async (t) => {
  const { limited, written, later } = limitedLog(2);
  for (let port = 1; port <= 5; port++)
    limited.warn('127.0.0.7', { remote: `127.0.0.7:${port}` }, 'TLS handshake refused');
  limited.warn('::1', { remote: '[::1]:9' }, 'TLS handshake refused');
  later(60_000);
  limited.warn('127.0.0.8', { remote: '127.0.0.8:1' }, 'TLS handshake refused');
  t.deepEqual(await written(), [
    { msg: 'TLS handshake refused', remote: '127.0.0.7:1', source: undefined, leftOut: undefined },
    { msg: 'TLS handshake refused', remote: '127.0.0.7:2', source: undefined, leftOut: undefined },
    { msg: 'TLS handshake refused', remote: '[::1]:9', source: undefined, leftOut: undefined },
    {
      msg: 'more lines like this were left out of the log',
      remote: undefined,
      source: '127.0.0.7',
      leftOut: 3,
    },
    { msg: 'TLS handshake refused', remote: '127.0.0.8:1', source: undefined, leftOut: undefined },
  ]);
});

test('each cause of a source is limited on its own', async (t) => {
  const { limited, written } = limitedLog(1);
  for (let n = 0; n < 3; n++) {
    limited.warn('n2', { type: 'append' }, 'Raft message refused: n2 is not a voter');
    limited.warn('n2', { type: 'vote' }, 'Raft vote refused: n2 is not a voter');
  }
  t.deepEqual(
    (await written()).map((l) => l.msg),
    ['Raft message refused: n2 is not a voter', 'Raft vote refused: n2 is not a voter'],
  );
});

test('past the sources it tracks, new ones share one count', async (t) => {
  const { limited, written } = limitedLog(1);
  for (let n = 0; n < 4100; n++) limited.warn(`127.1.${n >> 8}.${n & 255}`, {}, 'refused');
  t.is((await written()).length, 4097, 'one line per tracked source, one for all the others');
});

test('a source gets its lines again a minute after its first, whenever that was', async (t) => {
  const { limited, written, later } = limitedLog(1);
  later(30_000);
  limited.warn('127.0.0.7', { remote: '127.0.0.7:1' }, 'refused');
  limited.warn('127.0.0.7', { remote: '127.0.0.7:2' }, 'refused');
  later(31_000);
  limited.warn('127.0.0.8', { remote: '127.0.0.8:1' }, 'refused');
  later(30_000);
  limited.warn('127.0.0.7', { remote: '127.0.0.7:3' }, 'refused');
  t.deepEqual(
    (await written()).map((l) => l.remote ?? `${l.source} left out ${l.leftOut}`),
    ['127.0.0.7:1', '127.0.0.8:1', '127.0.0.7 left out 1', '127.0.0.7:3'],
  );
});
