import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import test from 'ava';
import { DialBridge, dialThroughBridge } from '../../../proxy/http/dial-bridge.js';
import { captureLogs } from '../../helpers/logs.js';

// This file's loopback block: 127.0.51.0/24 (an echo server standing in for another node's stream).

/** An echo server on 127.0.51.1; opened as the bridge's "stream to another node". */
async function echoServer() {
  const server = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.51.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, port };
}

async function bridgeTo(port: number) {
  const asked: Array<{ nodeId: string; target: string }> = [];
  const logs = captureLogs('n1');
  const bridge = new DialBridge(
    `\0mesh-test-bridge-${randomBytes(4).toString('hex')}`,
    async (nodeId, target) => {
      asked.push({ nodeId, target });
      if (nodeId !== 'n2') throw new Error(`node ${nodeId} is not a member`);
      const socket = connect({ host: '127.0.51.1', port });
      await once(socket, 'connect');
      return socket;
    },
    logs.log,
  );
  await bridge.listen();
  return { bridge, asked, logs };
}

async function echoed(socket: Socket, text: string): Promise<string> {
  // It arrives paused, like a stream between agents.
  socket.resume();
  socket.write(text);
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  return chunk.toString();
}

test('the ingress thread reaches another node through the bridge: bytes flow both ways', async (t) => {
  const { server, port } = await echoServer();
  const { bridge, asked } = await bridgeTo(port);
  const socket = await dialThroughBridge(bridge, 'n2', 'http/task1/80');
  t.deepEqual(asked, [{ nodeId: 'n2', target: 'http/task1/80' }]);
  t.is(await echoed(socket, 'hello'), 'hello');
  socket.destroy();
  bridge.close();
  server.close();
});

test('a stream the main thread cannot open is refused with its reason', async (t) => {
  const { server, port } = await echoServer();
  const { bridge, logs } = await bridgeTo(port);
  const error = await t.throwsAsync(dialThroughBridge(bridge, 'n9', 'task1/80'));
  t.is(error?.message, 'node n9 is not a member');
  t.like(await logs.waitFor((l) => l.msg === 'no stream for the ingress'), {
    peer: 'n9',
    reason: 'node n9 is not a member',
  });
  bridge.close();
  server.close();
});

test('a process that does not know the secret is served nothing', async (t) => {
  const { server, port } = await echoServer();
  const { bridge, asked, logs } = await bridgeTo(port);
  const wrong = { path: bridge.path, secret: 'f'.repeat(bridge.secret.length) };
  const error = await t.throwsAsync(dialThroughBridge(wrong, 'n2', 'task1/80'));
  t.regex(
    error?.message ?? '',
    /^the agent's ingress bridge gave no answer: closed before the end of its head$/,
  );
  t.deepEqual(asked, [], 'nothing was opened for it');
  t.like(await logs.waitFor((l) => /does not know its secret/.test(l.msg)), { level: 40 });
  bridge.close();
  server.close();
});
