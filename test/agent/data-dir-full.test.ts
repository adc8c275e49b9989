/**
 * A full data dir, then a read-only one, with a real agent whose data dir is a small tmpfs (root
 * only: skipped with the reason where mounting is not allowed). A write refused with the node and
 * the data dir named, the agent still serving DNS, the ingress and reads, writes working again
 * once space is freed, nothing acknowledged lost, the log whole at the next start; a read-only
 * data dir refused at start, named.
 *
 * This file's loopback block: 127.0.95.0/24.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { NodeRow } from '../../agent/control/api.js';
import { releaseRun } from '../../examples/leftovers.js';
import { BACKEND_SCRIPT } from '../bench/wrk.js';
import {
  type AgentProcess,
  deployStack,
  LocalCluster,
  meshJson,
  meshOn,
  nodeIdOf,
  stopAgents,
  waitForControl,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

const run = promisify(execFile);
const HOST = '127.0.95.1';
const HTTP_PORT = 18_095;

/** Why mounting a tmpfs here fails, or undefined when it works (then it is unmounted again). */
async function cannotMount(dir: string): Promise<string | undefined> {
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    await run('umount', [dir]);
    return undefined;
  } catch (error) {
    return (error as Error).message.split('\n')[0];
  }
}

async function labels(agent: Parameters<typeof meshOn>[0]): Promise<Record<string, string>> {
  const [node] = await meshJson<NodeRow[]>(agent, 'node', 'ls');
  return node?.labels ?? {};
}

/** GET / through the agent's ingress for the service's name. */
function throughIngress(): Promise<number> {
  return new Promise((resolve) => {
    const req = get(
      { host: HOST, port: HTTP_PORT, path: '/', headers: { host: 'web.disk.mesh' } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', () => resolve(0)); // not answering (yet): 0
  });
}

test('a full data dir refuses writes by name and keeps serving; freed, writes work and nothing acknowledged is lost; read-only, the agent will not start', async (t) => {
  const cluster = await LocalCluster.create('data-dir-full');
  const dataDir = join(cluster.root, 'd1');
  await mkdir(dataDir);
  const reason = await cannotMount(dataDir);
  if (reason) {
    await cluster.close();
    t.log(`skipped: mounting a tmpfs is not allowed here (${reason})`);
    t.pass();
    return;
  }
  await run('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dataDir]);
  const started: AgentProcess[] = [];
  t.teardown(async () => {
    // What runs on the tmpfs stops, and what its data dir names is taken back, before it goes.
    await stopAgents(started);
    await releaseRun(cluster.root);
    await run('umount', [dataDir]);
    await cluster.close();
  });

  const [agent] = await cluster.start(
    [HOST],
    'd',
    [],
    ['--dns-upstream', 'none', '--http-port', String(HTTP_PORT), '--https-port', '0'],
  );
  if (!agent) throw new Error('no agent');
  started.push(agent);
  const self = await nodeIdOf(agent);
  await deployStack(
    cluster,
    agent,
    'disk',
    `services:\n  web:\n    command: ${JSON.stringify([process.execPath, '-e', BACKEND_SCRIPT])}\n    ports: ["8080"]\n    x-mesh: { runtime: process }\n`,
  );
  await eventually(async () => (await throughIngress()) === 200 || undefined, {
    what: 'web answering through the ingress',
    timeoutMs: 20_000,
  });
  for (const i of [1, 2, 3])
    t.is((await meshOn(agent, 'node', 'label', self, `before${i}=yes`)).code, 0);

  // Fill the data dir to the last byte.
  await run('dd', ['if=/dev/zero', `of=${join(dataDir, 'filler')}`, 'bs=64k']).catch(
    () => undefined, // dd ends with "No space left on device": that is the point
  );
  // The last pages of the log's file may still have room for a few records: writes go on
  // until one needs a page more.
  const acknowledged: Record<string, string> = { before1: 'yes', before2: 'yes', before3: 'yes' };
  let refused: Awaited<ReturnType<typeof meshOn>> | undefined;
  for (let i = 1; i <= 200 && !refused; i++) {
    const written = await meshOn(agent, 'node', 'label', self, `during${i}=yes`);
    if (written.code === 0) acknowledged[`during${i}`] = 'yes';
    else refused = written;
  }
  if (!refused) throw new Error('200 writes to a full data dir were all accepted');
  t.regex(refused.stderr, new RegExp(`node ${self} could not store it`));
  t.regex(refused.stderr, new RegExp(`${dataDir}/raft: ENOSPC: no space left on device`));
  t.regex(refused.stderr, /may or may not have been applied/);

  // Still serving while full: reads, DNS and the ingress.
  t.like(await labels(agent), { before1: 'yes', before3: 'yes' });
  const { stdout: answer } = await run('dig', [`@${HOST}`, '+short', 'web.disk.mesh']);
  t.regex(answer, /^10\.250\.95\.\d+$/m, 'DNS answers from the replica it holds');
  t.is(await throughIngress(), 200, 'the ingress serves');
  t.is(agent.child.exitCode, null, 'the agent runs on');
  const log = await readFile(`${dataDir}.log`, 'utf8');
  t.is(
    log.split('\n').filter((line) => line.includes("Raft's log cannot be written")).length,
    1,
    'the failure is logged once, not at every tick',
  );

  // Space freed: writes work again.
  await run('rm', [join(dataDir, 'filler')]);
  await eventually(
    async () => (await meshOn(agent, 'node', 'label', self, 'after=yes')).code === 0 || undefined,
    { what: 'a write accepted once space is freed', timeoutMs: 10_000, intervalMs: 200 },
  );
  t.like(await labels(agent), { ...acknowledged, after: 'yes' });

  // The log is whole: the agent starts again on it, with every acknowledged write.
  await stopAgents([agent]);
  const again = cluster.spawn('d1', ['agent']);
  started.push(again);
  await waitForControl(again);
  t.like(await labels(again), { ...acknowledged, after: 'yes' });
  t.notRegex(await readFile(`${dataDir}.log`, 'utf8'), /damaged|torn or corrupt tail/);

  // Read-only: refused at start, the data dir named. (Its task goes first: a process task keeps
  // its output open in the data dir, which would keep the mount from going read-only.)
  t.is((await meshOn(again, 'rm', 'disk')).code, 0);
  await stopAgents([again]);
  await eventually(
    () =>
      run('mount', ['-o', 'remount,ro', dataDir]).then(
        () => true,
        () => undefined, // still busy: the task is stopping
      ),
    { what: 'the data dir remounted read-only', timeoutMs: 15_000, intervalMs: 200 },
  );
  const readOnly = cluster.spawn('d1', ['agent']);
  started.push(readOnly);
  t.not(await readOnly.exited, 0, 'the agent does not start');
  await run('mount', ['-o', 'remount,rw', dataDir]);
  t.regex(
    await readFile(`${dataDir}.log`, 'utf8'),
    new RegExp(`the data dir ${dataDir} cannot be written \\(read-only file system\\)`),
  );
});
