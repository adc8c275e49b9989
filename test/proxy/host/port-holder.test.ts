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
  t.regex(portHolder(port, 'tcp') ?? '', THIS_PROCESS);
});

test('the process bound to a UDP port is named, with its pid', async (t) => {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
  t.teardown(() => socket.close());
  t.regex(portHolder(socket.address().port, 'udp') ?? '', THIS_PROCESS);
});

test('a port nobody holds has no holder', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  t.is(portHolder(port, 'tcp'), undefined);
});
