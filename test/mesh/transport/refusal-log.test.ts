import test from 'ava';
import { RefusalLog } from '../../../mesh/transport/refusal-log.js';
import { captureLogs } from '../../helpers/logs.js';

/** A refusal log on a clock the test moves, and what it wrote (lines arrive a tick later). */
function refusalLog(perMinute: number) {
  const logs = captureLogs('n1');
  let now = 0;
  const refusals = new RefusalLog(logs.log, perMinute, () => now);
  const written = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    return logs.lines.map(({ msg, remote, host, leftOut }) => ({ msg, remote, host, leftOut }));
  };
  return { refusals, written, later: (ms: number) => (now += ms) };
}

test('each address gets a few lines a minute; what is left out is told once the minute is over', async (t) => {
  const { refusals, written, later } = refusalLog(2);
  for (let port = 1; port <= 5; port++)
    refusals.warn(`127.0.0.7:${port}`, { reason: 'bad' }, 'TLS handshake refused');
  refusals.warn('[::1]:9', { reason: 'bad' }, 'TLS handshake refused');
  later(60_000);
  refusals.warn('127.0.0.8:1', { reason: 'bad' }, 'TLS handshake refused');
  t.deepEqual(await written(), [
    { msg: 'TLS handshake refused', remote: '127.0.0.7:1', host: undefined, leftOut: undefined },
    { msg: 'TLS handshake refused', remote: '127.0.0.7:2', host: undefined, leftOut: undefined },
    { msg: 'TLS handshake refused', remote: '[::1]:9', host: undefined, leftOut: undefined },
    {
      msg: 'more refused connections from this address were left out of the log',
      remote: undefined,
      host: '127.0.0.7',
      leftOut: 3,
    },
    { msg: 'TLS handshake refused', remote: '127.0.0.8:1', host: undefined, leftOut: undefined },
  ]);
});

test('past the addresses it tracks, new ones share one count', async (t) => {
  const { refusals, written } = refusalLog(1);
  for (let n = 0; n < 4100; n++) refusals.warn(`127.1.${n >> 8}.${n & 255}:1`, {}, 'refused');
  t.is((await written()).length, 4097, 'one line per tracked address, one for all the others');
});

test('an address gets its lines again a minute after its first, whenever that was', async (t) => {
  const { refusals, written, later } = refusalLog(1);
  later(30_000);
  refusals.warn('127.0.0.7:1', {}, 'refused');
  refusals.warn('127.0.0.7:2', {}, 'refused');
  later(31_000);
  refusals.warn('127.0.0.8:1', {}, 'refused');
  later(30_000);
  refusals.warn('127.0.0.7:3', {}, 'refused');
  t.deepEqual(
    (await written()).map((l) => l.remote ?? `${l.host} left out ${l.leftOut}`),
    ['127.0.0.7:1', '127.0.0.8:1', '127.0.0.7 left out 1', '127.0.0.7:3'],
  );
});
