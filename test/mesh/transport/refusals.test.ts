import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import test from 'ava';
import { pack } from 'msgpackr';
import type { WebSocket } from 'ws';
import { dial } from '../../../mesh/transport/dial.js';
import type { TransportError } from '../../../mesh/transport/errors.js';
import { MEMBER_PATH } from '../../../mesh/transport/link.js';
import { clientTlsOptions } from '../../../mesh/transport/tls.js';
import type { Transport } from '../../../mesh/transport/transport.js';
import { selfSignedIdentity, startTransport, testCluster } from '../../helpers/cluster.js';
import { type CapturedLogs, captureLogs } from '../../helpers/logs.js';

// This file's loopback block: 127.0.11.0/24.
const SERVER = '127.0.11.1';
const MAX_FRAME = 64 * 1024;
const MAX_MESSAGE = 256 * 1024;

const cluster = await testCluster();
/** The node IDs the cluster recorded (as the join service does): the server admits only them. */
const recorded = new Set<string>();
/** Certificates no longer honoured (a removed node's). */
const revoked = new Set<string>();
async function member(options?: Parameters<typeof cluster.identity>[0]) {
  const identity = await cluster.identity(options);
  recorded.add(identity.nodeId);
  return identity;
}
const serverIdentity = await member();
const serverLogs: CapturedLogs = captureLogs(serverIdentity.nodeId);
const server: Transport = await startTransport(serverIdentity, SERVER, serverLogs.log, {
  maxFrameBytes: MAX_FRAME,
  maxMessageBytes: MAX_MESSAGE,
  // Every refusal these tests make is looked for in the log.
  refusalLogsPerMinute: 1000,
  admission: ({ nodeId, serial }) =>
    revoked.has(serial)
      ? `certificate ${serial} of node ${nodeId} is revoked`
      : recorded.has(nodeId)
        ? undefined
        : `node ${nodeId} is not a member of this cluster: no join recorded it`,
});
server.handle('echo', (body) => body);
const honest = await startTransport(await member(), '127.0.11.2', captureLogs('honest').log);

test.after.always(async () => {
  await honest.close();
  await server.close();
});

const url = () => `wss://${server.address}${MEMBER_PATH}`;

async function stillServesHonestPeer(t: import('ava').ExecutionContext): Promise<void> {
  const nonce = randomBytes(8).toString('hex');
  t.is(
    await honest
      .request(server.address, 'echo', { nonce })
      .then((b) => (b as { nonce: string }).nonce),
    nonce,
  );
}

function refusalLogged(reason: string) {
  return serverLogs.waitFor(
    (line) => line.msg === 'connection refused' && String(line.reason).includes(reason),
  );
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
}

/** An authenticated raw connection, to send frames the Transport itself would never produce. */
async function authenticatedRawSocket(): Promise<WebSocket> {
  const identity = await member();
  const { ws } = await dial(url(), {
    ...clientTlsOptions(identity, { clusterId: identity.clusterId }),
    localAddress: '127.0.11.3',
  });
  return ws;
}

test.serial('a client without a certificate is refused', async (t) => {
  const error = await t.throwsAsync<TransportError>(
    dial(url(), {
      ca: [cluster.ca.certPem],
      checkServerIdentity: () => undefined,
      localAddress: '127.0.11.4',
    }),
  );
  t.is(error?.code, 'refused');
  t.regex(error?.message ?? '', /client certificate required/);
  await refusalLogged('client certificate required');
  await stillServesHonestPeer(t);
});

test.serial('a self-signed certificate is refused', async (t) => {
  const selfSigned = await selfSignedIdentity();
  const error = await t.throwsAsync<TransportError>(
    dial(url(), {
      cert: selfSigned.certPem,
      key: selfSigned.keyPem,
      rejectUnauthorized: false,
      localAddress: '127.0.11.5',
    }),
  );
  t.is(error?.code, 'refused');
  t.regex(error?.message ?? '', /DEPTH_ZERO_SELF_SIGNED_CERT/);
  await refusalLogged('certificate not accepted');
  await stillServesHonestPeer(t);
});

test.serial('a certificate from another cluster CA is refused', async (t) => {
  const other = await testCluster();
  const stranger = await other.identity();
  const error = await t.throwsAsync<TransportError>(
    dial(url(), {
      cert: stranger.certPem,
      key: stranger.keyPem,
      rejectUnauthorized: false,
      localAddress: '127.0.11.6',
    }),
  );
  t.is(error?.code, 'refused');
  t.regex(error?.message ?? '', /certificate not accepted: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  await refusalLogged('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  await stillServesHonestPeer(t);
});

test.serial('a node refuses a server that belongs to another cluster', async (t) => {
  const other = await testCluster();
  const foreign = await startTransport(await other.identity(), '127.0.11.7', captureLogs('x').log);
  t.teardown(() => foreign.close());
  const error = await t.throwsAsync<TransportError>(honest.request(foreign.address, 'echo', {}));
  t.is(error?.code, 'unreachable');
  t.regex(error?.message ?? '', /certificate/);
  await stillServesHonestPeer(t);
});

test.serial('an expired certificate is refused', async (t) => {
  const expired = await member({
    validFrom: new Date(Date.now() - 100 * 86_400_000),
    validDays: 90,
  });
  const transport = await startTransport(expired, '127.0.11.8', captureLogs('expired').log);
  t.teardown(() => transport.close());
  const error = await t.throwsAsync<TransportError>(transport.request(server.address, 'echo', {}));
  t.is(error?.code, 'refused');
  t.regex(error?.message ?? '', /CERT_HAS_EXPIRED/);
  await refusalLogged('CERT_HAS_EXPIRED');
  await stillServesHonestPeer(t);
});

test.serial('a certificate of the cluster CA for a node no join recorded is refused', async (t) => {
  // Made with the CA key, as someone holding a copy of it could: right cluster, right role.
  const forged = await cluster.identity();
  const transport = await startTransport(forged, '127.0.11.11', captureLogs('forged').log);
  t.teardown(() => transport.close());
  const error = await t.throwsAsync<TransportError>(transport.request(server.address, 'echo', {}));
  t.is(error?.code, 'refused');
  const reason = `node ${forged.nodeId} is not a member of this cluster: no join recorded it`;
  t.regex(error?.message ?? '', new RegExp(reason));
  const line = await refusalLogged(reason);
  t.regex(String(line.remote), /^127\.0\.11\.11:\d+$/);
  await stillServesHonestPeer(t);
});

test.serial(
  'a certificate no longer honoured is refused, and its live connection dropped',
  async (t) => {
    const identity = await member();
    const logs = captureLogs('revoked');
    const transport = await startTransport(identity, '127.0.11.9', logs.log);
    t.teardown(() => transport.close());
    t.deepEqual(await transport.request(server.address, 'echo', 'before'), 'before');

    revoked.add(identity.serial);
    server.recheck();
    await logs.waitFor((line) => line.msg === 'link closed' && line.peer === server.nodeId);
    await serverLogs.waitFor(
      (line) =>
        line.msg === 'certificate no longer honoured: dropping its live connection' &&
        line.serial === identity.serial,
    );
    const error = await t.throwsAsync<TransportError>(
      transport.request(server.address, 'echo', 'after'),
    );
    t.is(error?.code, 'refused');
    t.regex(error?.message ?? '', /revoked/);
    await refusalLogged(`certificate ${identity.serial} of node ${identity.nodeId} is revoked`);
    await stillServesHonestPeer(t);
  },
);

/** Sends garbage instead of a TLS handshake from `from`; resolves once the server hung up. */
async function garbageHandshake(to: Transport, from: string): Promise<void> {
  const socket = connect({
    host: to.address.split(':')[0],
    port: Number(to.address.split(':')[1]),
    localAddress: from,
  });
  socket.on('error', () => {}); // the server may reset; either way it must hang up
  // Read what the server sends (a TLS alert, at times): a socket nobody reads never sees the end.
  socket.resume();
  await new Promise((resolve) => socket.once('connect', resolve));
  // Not random: a random first byte can read as the start of an SSLv2 hello that claims more
  // bytes, which the server then waits for until its handshake timeout.
  socket.write(Buffer.alloc(2048, 'not a TLS handshake '));
  await new Promise((resolve) => socket.once('close', resolve));
}

test.serial('garbage bytes instead of a TLS handshake are refused', async (t) => {
  await garbageHandshake(server, '127.0.11.10');
  t.pass();
  await serverLogs.waitFor(
    (line) =>
      line.msg === 'TLS handshake refused' && String(line.remote).startsWith('127.0.11.10:'),
  );
  await stillServesHonestPeer(t);
});

test.serial(
  'refusals are logged a few a minute per address; past that they are only counted',
  async (t) => {
    const logs = captureLogs('scanned');
    const scanned = await startTransport(await member(), '127.0.11.12', logs.log, {
      refusalLogsPerMinute: 2,
    });
    t.teardown(() => scanned.close());
    for (let n = 0; n < 6; n++) await garbageHandshake(scanned, '127.0.11.13');
    // Another address still gets its line; once it is in, every line before it is too.
    await garbageHandshake(scanned, '127.0.11.14');
    await logs.waitFor((l) => String(l.remote).startsWith('127.0.11.14:'));
    const fromScanner = logs.lines.filter((l) => String(l.remote).startsWith('127.0.11.13:'));
    t.deepEqual(
      fromScanner.map((l) => l.msg),
      ['TLS handshake refused', 'TLS handshake refused'],
    );
  },
);

test.serial('a handshake cut off by the client is logged with its address and why', async (t) => {
  const socket = connect({
    host: SERVER,
    port: Number(server.address.split(':')[1]),
    localAddress: '127.0.11.10',
  });
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])); // the start of a ClientHello
  socket.resetAndDestroy();
  const line = await serverLogs.waitFor(
    (l) => l.msg === 'TLS handshake refused' && String(l.reason).startsWith('ECONNRESET'),
  );
  t.regex(String(line.remote), /^127\.0\.11\.10:\d+$/);
  await stillServesHonestPeer(t);
});

test.serial('a garbage frame from an authenticated peer closes only that connection', async (t) => {
  const ws = await authenticatedRawSocket();
  const done = closed(ws);
  ws.send(randomBytes(512).fill(0xc1)); // 0xc1 is the one byte msgpack never uses
  t.is((await done).code, 1008);
  await serverLogs.waitFor(
    (line) =>
      line.msg === 'malformed frame refused, closing the connection' &&
      String(line.reason).startsWith('not msgpack'),
  );
  await stillServesHonestPeer(t);
});

/** Frames sent on a member connection close it as malformed, logged with the reason. */
async function refusedAsMalformed(
  t: import('ava').ExecutionContext,
  frames: readonly Buffer[],
  reason: string,
): Promise<void> {
  const ws = await authenticatedRawSocket();
  const done = closed(ws);
  for (const frame of frames) ws.send(frame);
  t.is((await done).code, 1008);
  await serverLogs.waitFor(
    (line) =>
      line.msg === 'malformed frame refused, closing the connection' &&
      String(line.reason).startsWith(reason),
  );
}

test.serial('well-formed msgpack of the wrong shape is refused', async (t) => {
  for (const [value, reason] of [
    [{ hello: 'world' }, 'expected an array frame'],
    [[1, -5, 'echo', null], 'frame of unknown shape'],
    [[9, 'echo', null], 'frame of unknown shape'],
  ] as const)
    await refusedAsMalformed(t, [pack(value)], reason);
  await stillServesHonestPeer(t);
});

test.serial('an oversize frame closes that connection', async (t) => {
  const ws = await authenticatedRawSocket();
  const done = closed(ws);
  ws.send(randomBytes(MAX_FRAME + 1024));
  t.is((await done).code, 1009);
  await serverLogs.waitFor(
    (line) =>
      line.msg === 'connection error' &&
      /Max payload size exceeded/.test(String((line.err as { message?: string })?.message)),
  );
  await stillServesHonestPeer(t);
});

test.serial(
  'parts of a message are refused past the message limit, or with a frame between them',
  async (t) => {
    const piece = randomBytes(MAX_FRAME / 2);
    for (const [frames, reason] of [
      [Array.from({ length: 9 }, () => pack([4, true, piece])), 'parts of more than'],
      [[pack([4, true, piece]), pack([0, 'echo', null])], 'a frame between the parts of another'],
    ] as const)
      await refusedAsMalformed(t, frames, reason);
    await stillServesHonestPeer(t);
  },
);

test.serial('a plain HTTP request on the TLS port gets no service', async (t) => {
  const { request } = await import('node:https');
  const status = await new Promise<number | undefined>((resolve, reject) => {
    const req = request(
      {
        host: SERVER,
        port: Number(server.address.split(':')[1]),
        path: '/',
        rejectUnauthorized: false,
        localAddress: '127.0.11.11',
      },
      (res) => resolve(res.statusCode),
    );
    req.on('error', reject);
    req.end();
  });
  t.is(status, 426);
  await serverLogs.waitFor((line) => line.msg === 'plain HTTP request refused');
  await stillServesHonestPeer(t);
});

test.serial('every line the server logged names its node', (t) => {
  t.true(serverLogs.lines.length > 10);
  t.true(serverLogs.lines.every((line) => line.node === server.nodeId));
});
