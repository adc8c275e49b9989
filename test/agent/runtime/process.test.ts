import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { ProcessRuntime } from '../../../agent/runtime/process.js';
import type { TaskSpec } from '../../../agent/runtime/runtime.js';
import { captureLogs } from '../../helpers/logs.js';
import { bodyOnceAnswering, eventually } from '../../helpers/poll.js';

// This file's loopback block: 127.0.19.0/24.
const HOST = '127.0.19.1';
const NODE = process.execPath;
const SERVER =
  "require('http').createServer((q, s) => s.end('hi from ' + process.env.MESH_TASK)).listen(+process.env.PORT, process.env.MESH_HOST)";

function runtime(t: ExecutionContext, dir = mkdtempSync(join(tmpdir(), 'mesh-process-'))) {
  const r = new ProcessRuntime({ dir, hostIp: HOST, log: captureLogs('n1').log, pollMs: 100 });
  t.teardown(async () => {
    for (const task of await r.list()) await r.remove(task.taskId, 100);
    await r.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { r, dir };
}

function spec(taskId: string, command: string[], ports: TaskSpec['ports'] = []): TaskSpec {
  return {
    taskId,
    stack: 's',
    service: 'web',
    image: '',
    command,
    env: {},
    ports,
    labels: {},
    resources: {},
    stopGracePeriodMs: 500,
  };
}

test('a task runs as a process, told its port and address through the environment', async (t) => {
  const { r } = runtime(t);
  const observed = await r.start(
    spec('p1', [NODE, '-e', SERVER], [{ target: 80, protocol: 'tcp' }]),
  );
  const [port] = observed.ports;
  t.is(port?.hostIp, HOST);
  const body = await bodyOnceAnswering(
    `http://${HOST}:${port?.hostPort}/`,
    'the process answering',
  );
  t.is(body, 'hi from p1');
  t.like(await r.inspect('p1'), { state: 'running' });
});

test('usage tells the CPU time a task spent and the memory it holds; a task gone is left out', async (t) => {
  const { r } = runtime(t);
  // Spins until it has spent half a second of CPU (however busy the machine), then idles holding 64 MB.
  const spin =
    'const b = Buffer.alloc(64 * 2 ** 20, 1); while (process.cpuUsage().user < 5e5); setInterval(() => b, 1000)';
  await r.start(spec('busy', [NODE, '-e', spin]));
  const used = await eventually(
    async () => {
      const u = (await r.usage(['busy', 'nothing'])).get('busy');
      return u && u.cpuNs >= 4e8 && u;
    },
    { what: 'half a second of CPU counted', timeoutMs: 30_000, intervalMs: 100 },
  );
  t.true(used.memoryBytes >= 64 * 2 ** 20, `${used.memoryBytes} bytes resident`);
  t.deepEqual([...(await r.usage(['busy', 'nothing'])).keys()], ['busy']);
  await r.remove('busy', 100);
  t.is((await r.usage(['busy'])).size, 0);
});

test('an exit is announced, and inspect tells its code', async (t) => {
  const { r } = runtime(t);
  const changed: string[] = [];
  await r.onChange((taskId) => changed.push(taskId));
  await r.start(spec('p2', [NODE, '-e', 'process.exit(7)']));
  await eventually(() => changed.includes('p2'), { what: 'exit', timeoutMs: 10_000 });
  t.like(await r.inspect('p2'), { state: 'exited', exitCode: 7, reason: 'exited with code 7' });
});

test('remove asks politely, then kills after the grace period', async (t) => {
  const { r, dir } = runtime(t);
  // It notes what it saw in a file of its own: the runtime removes the task's log with it.
  const log = join(dir, 'p3.seen');
  const stubborn = `const note = (s) => require('fs').appendFileSync(${JSON.stringify(log)}, s + '\\n');
    process.on('SIGTERM', () => note('ignoring SIGTERM')); note('ready'); setInterval(() => {}, 1000)`;
  await r.start(spec('p3', [NODE, '-e', stubborn]));
  await eventually(() => existsSync(log) && readFileSync(log, 'utf8').includes('ready'), {
    what: 'task ready',
    timeoutMs: 10_000,
  });
  await r.remove('p3', 300);
  t.is(await r.inspect('p3'), undefined);
  t.regex(
    readFileSync(log, 'utf8'),
    /ignoring SIGTERM/,
    'it was asked first, and killed only after',
  );
});

test('a command that does not exist fails with a clear reason', async (t) => {
  const { r } = runtime(t);
  const error = await t.throwsAsync(r.start(spec('p4', ['/nonexistent/mesh-binary'])));
  t.regex(
    error?.message ?? '',
    /^task p4: cannot run "\/nonexistent\/mesh-binary": spawn \/nonexistent\/mesh-binary ENOENT/,
  );
});

test('a new agent run adopts tasks still running, and sees them end', async (t) => {
  const { r, dir } = runtime(t);
  await r.start(spec('p5', [NODE, '-e', 'setTimeout(() => {}, 60_000)']));
  await r.close();
  const again = new ProcessRuntime({ dir, hostIp: HOST, log: captureLogs('n1').log, pollMs: 100 });
  t.teardown(() => again.close());
  t.like(await again.inspect('p5'), { state: 'running' });
  const changed: string[] = [];
  await again.onChange((taskId) => changed.push(taskId));
  const { pid } = JSON.parse(readFileSync(join(dir, 'p5.json'), 'utf8')) as { pid: number };
  process.kill(pid, 'SIGKILL');
  await eventually(() => changed.includes('p5'), { what: 'adopted exit', timeoutMs: 10_000 });
  t.regex((await again.inspect('p5'))?.reason ?? '', /exit code unknown/);
});

test('a round that cannot look at its tasks (no descriptors, no directory) is logged, not fatal', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-process-'));
  const logs = captureLogs('n1');
  const r = new ProcessRuntime({ dir, hostIp: HOST, log: logs.log, pollMs: 20 });
  t.teardown(() => r.close());
  await r.onChange(() => undefined);
  rmSync(dir, { recursive: true, force: true }); // readdir fails now, as it does at EMFILE
  const line = await logs.waitFor((l) => l.msg === 'could not look at adopted tasks');
  t.regex(String(line.reason), /ENOENT/);
});

test('a spec without a command is refused', async (t) => {
  const { r } = runtime(t);
  await t.throwsAsync(r.start(spec('p6', [])), {
    message: 'task p6: the process runtime needs a command',
  });
});
