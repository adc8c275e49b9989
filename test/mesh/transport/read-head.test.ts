import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { OversizeHead, readHead } from '../../../mesh/transport/read-head.js';

test('the head comes back without its terminator; the bytes after it are read next', async (t) => {
  const socket = new PassThrough();
  const head = readHead(socket, '\r\n\r\n', 64);
  socket.write('HTTP/1.1 101 Switching\r\n');
  socket.write('Upgrade: x\r\n\r\nfirst bytes');
  t.is((await head).toString(), 'HTTP/1.1 101 Switching\r\nUpgrade: x');
  t.true(socket.isPaused());
  socket.resume();
  const [rest] = (await once(socket, 'data')) as [Buffer];
  t.is(rest.toString(), 'first bytes');
});

test('a head longer than allowed is refused as oversize', async (t) => {
  const socket = new PassThrough();
  const head = readHead(socket, '\n', 8);
  socket.write('0123456789');
  await t.throwsAsync(head, { instanceOf: OversizeHead, message: /within 8 bytes/ });
});

test('a socket that ends before the terminator rejects, naming why', async (t) => {
  const socket = new PassThrough();
  const head = readHead(socket, '\n', 64);
  socket.end('half a line');
  await t.throwsAsync(head, { message: 'closed before the end of its head' });
});
