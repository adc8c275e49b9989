import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import test from 'ava';
import { portHolder } from '../../../proxy/host/port-holder.js';

// This file's loopback block: 127.0.71.0/24.
const HOST = '127.0.71.1';
const THIS_PROCESS = new RegExp(`^\\S+ \\(pid ${process.pid}\\)$`);

test('the process listening on a TCP port is named, with its pid', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as { port: number };
  t.regex(portHolder(HOST, port, 'tcp') ?? '', THIS_PROCESS);
});

test('the process bound to a UDP port is named, with its pid', async (t) => {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
  t.teardown(() => socket.close());
  t.regex(portHolder(HOST, socket.address().port, 'udp') ?? '', THIS_PROCESS);
});

test('a port nobody holds has no holder', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  t.is(portHolder(HOST, port, 'tcp'), undefined);
});

test('a listener on the same port at another address is not the holder; one on every address is', async (t) => {
  const elsewhere = createServer();
  await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.71.2', resolve));
  t.teardown(() => elsewhere.close());
  const { port } = elsewhere.address() as { port: number };
  t.is(
    portHolder(HOST, port, 'tcp'),
    undefined,
    'another node of this host holds it, not this one',
  );
  const everywhere = createServer();
  await new Promise<void>((resolve) => everywhere.listen(0, '0.0.0.0', resolve));
  t.teardown(() => everywhere.close());
  const wildcard = (everywhere.address() as { port: number }).port;
  t.regex(portHolder(HOST, wildcard, 'tcp') ?? '', THIS_PROCESS);
});
