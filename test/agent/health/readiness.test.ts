import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { nextCheckMs, PORTS_CHECK, portsAccept, probeOnce } from '../../../agent/health/probes.js';
import { afterProbe, NOT_YET_PROBED, type Readiness } from '../../../agent/health/readiness.js';
import type { ReadinessProbe } from '../../../mesh/api/services.js';

const probe: ReadinessProbe = {
  kind: 'http',
  port: 80,
  path: '/ready',
  intervalMs: 1000,
  timeoutMs: 500,
  failureThreshold: 3,
  successThreshold: 2,
  startPeriodMs: 5000,
};

const run = (outcomes: boolean[], sinceStartMs = 10_000, from: Readiness = NOT_YET_PROBED) =>
  outcomes.reduce(
    (r, ok) => afterProbe(r, probe, { ok, detail: ok ? '200' : '503' }, sinceStartMs),
    from,
  );

test('success_threshold passes in a row make a task ready', (t) => {
  t.false(run([true]).ready);
  t.false(run([true, false, true]).ready, 'a failure resets the count');
  t.true(run([true, true]).ready);
});

test('failure_threshold failures in a row make a ready task not ready', (t) => {
  const ready = run([true, true]);
  t.true(run([false, false], 10_000, ready).ready);
  const gone = run([false, false, false], 10_000, ready);
  t.false(gone.ready);
  t.false(gone.neverReady, 'it was ready once: not ready now, not a failed start');
  t.true(run([true, true], 10_000, gone).ready, 'and comes back by itself');
});

test('a task that fails failure_threshold times past its start period without ever passing never became ready', (t) => {
  t.false(run([false, false, false, false], 1000).neverReady, 'within the start period');
  t.true(run([false, false, false]).neverReady);
  t.false(run([false, false, false, true, true]).neverReady, 'until it passes after all');
});

test('an HTTP probe passes on 2xx and 3xx, fails on other statuses and refused connections', async (t) => {
  const status = { code: 200 };
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/ready' ? status.code : 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const target = { host: '127.0.0.1', port };
  t.deepEqual(await probeOnce(probe, target), { ok: true, detail: 'GET /ready: 200' });
  status.code = 302;
  t.true((await probeOnce(probe, target)).ok);
  status.code = 503;
  t.deepEqual(await probeOnce(probe, target), { ok: false, detail: 'GET /ready: 503' });
  await new Promise((resolve) => server.close(resolve));
  t.deepEqual(await probeOnce(probe, target), { ok: false, detail: 'GET /ready: ECONNREFUSED' });
  t.deepEqual(await probeOnce({ ...probe, kind: 'tcp' }, target), {
    ok: false,
    detail: `TCP ${port}: ECONNREFUSED`,
  });
});

test('a probe that gets no answer within its timeout fails saying so', async (t) => {
  const server = createServer(() => {}); // accepts, never answers
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const outcome = await probeOnce({ ...probe, timeoutMs: 100 }, { host: '127.0.0.1', port });
  t.deepEqual(outcome, { ok: false, detail: 'GET /ready: no answer within 100 ms' });
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

test('the ports check passes once every port accepts; it names the first that does not', async (t) => {
  const servers = [createServer(), createServer()];
  for (const server of servers)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const [open, other] = servers.map((s) => (s.address() as AddressInfo).port) as [number, number];
  t.deepEqual(await portsAccept('127.0.0.1', [open, other], 500), {
    ok: true,
    detail: `ports ${open}, ${other} accept connections`,
  });
  await new Promise((resolve) => servers[1]?.close(resolve));
  t.deepEqual(await portsAccept('127.0.0.1', [open, other], 500), {
    ok: false,
    detail: `waiting for port ${other} (ECONNREFUSED)`,
  });
  await new Promise((resolve) => servers[0]?.close(resolve));
});

test('a port that never opens makes a task never ready only past the ports check’s start period', (t) => {
  const refused = { ok: false, detail: 'waiting for port 5432 (ECONNREFUSED)' };
  const after = (sinceStartMs: number) =>
    [1, 2, 3].reduce((r) => afterProbe(r, PORTS_CHECK, refused, sinceStartMs), NOT_YET_PROBED);
  t.false(after(30_000).neverReady, 'a database may take half a minute to open its port');
  t.true(after(PORTS_CHECK.startPeriodMs + 3000).neverReady);
  t.true(
    afterProbe(NOT_YET_PROBED, PORTS_CHECK, { ok: true, detail: 'port 5432 accept' }, 100).ready,
    'one accepted connection makes it ready',
  );
});

test('a starting replica is checked again after 100 ms, then twice as long each time up to the interval; a declared probe keeps its own', (t) => {
  const waits = [1, 2, 3, 4, 5, 6].map((checks) =>
    nextCheckMs({ probe: PORTS_CHECK, untilReady: true, checks }),
  );
  t.deepEqual(waits, [100, 200, 400, 800, 1000, 1000]);
  const declared = { ...PORTS_CHECK, intervalMs: 5000 };
  t.is(nextCheckMs({ probe: declared, untilReady: false, checks: 1 }), 5000);
});
