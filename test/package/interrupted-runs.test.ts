/**
 * A user who stops the demo or a benchmark midway, with Ctrl-C (SIGINT), SIGTERM or by closing
 * its terminal (SIGHUP), finds the machine as it was: no agent process, no iptables chain or rule,
 * no address on lo, no route, no container or network, no scratch directory of the run.
 *
 * The demo runs on 127.0.94.1-3 with ranges of its own; bench:partition on its 127.0.30.1-3.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import type Docker from 'dockerode';
import { sweepLeftovers } from '../../examples/leftovers.js';
import { dockerTest } from '../helpers/docker.js';
import { testRanges } from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

const run = promisify(execFile);
const DIST = fileURLToPath(new URL('../../', import.meta.url));
const DEMO_HOSTS = ['127.0.94.1', '127.0.94.2', '127.0.94.3'];
const DEMO_RANGES = testRanges(DEMO_HOSTS[0] as string);
const PARTITION_RANGES = testRanges('127.0.30.1');
const PARTITION_CHAIN = 'mesh-bench-partition';

/** A script of the build run as `npm run` runs it, its output kept for the test to watch. */
function start(script: string, args: string[]) {
  const child = spawn(process.execPath, [join(DIST, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (chunk) => {
      output += String(chunk);
    });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, output: () => output, exited };
}

/** Kills what a failed test left running (the harness then cleans up itself). */
function stopOnTeardown(t: ExecutionContext, child: ChildProcess): void {
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
}

/** Processes whose command line names the path (agents name their data dirs). */
async function processesNaming(path: string): Promise<string[]> {
  const { stdout } = await run('pgrep', ['-af', path]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter((line) => line.trim() !== '');
}

/** What is left on the host of a run with these ranges and scratch directories. */
async function leftovers(ranges: { serviceRange: string; bridgeRange: string }, prefix: string) {
  const servicePrefix = ranges.serviceRange.split('.').slice(0, 3).join('.');
  const { stdout: addresses } = await run('ip', ['-4', 'addr', 'show', 'dev', 'lo']);
  const { stdout: routes } = await run('ip', ['route', 'show', 'type', 'unreachable']);
  const { stdout: rules } = await run('iptables', ['-w', '-S']);
  return {
    addresses: addresses.split('\n').filter((line) => line.includes(`inet ${servicePrefix}.`)),
    routes: routes
      .split('\n')
      .filter((line) => line.includes(ranges.serviceRange) || line.includes(ranges.bridgeRange)),
    rules: rules.split('\n').filter((line) => line.includes(PARTITION_CHAIN)),
    directories: (await readdir(tmpdir())).filter((name) => name.startsWith(prefix)),
    processes: await processesNaming(join(tmpdir(), prefix)),
  };
}

const nothing = { addresses: [], routes: [], rules: [], directories: [], processes: [] };

/** The scratch directory the demo names in its first line. */
function demoRoot(output: string): string | undefined {
  return /data and logs in (\S+)\)/.exec(output)?.[1];
}

/** Runs the demo, stops it with the signal once it printed `midway`; what it left, checked. */
async function interruptDemo(
  t: ExecutionContext,
  docker: Docker,
  signal: keyof typeof EXIT_CODES,
  midway: string,
): Promise<void> {
  const demo = start('examples/demo.js', [
    '--hosts',
    DEMO_HOSTS.join(','),
    '--service-range',
    DEMO_RANGES.serviceRange,
    '--bridge-range',
    DEMO_RANGES.bridgeRange,
  ]);
  stopOnTeardown(t, demo.child);
  const root = await eventually(() => demoRoot(demo.output()), {
    timeoutMs: 30_000,
    what: 'the demo naming its directory',
  });
  const { clusterId } = await eventually(
    () =>
      readFile(join(root, 'node1', 'cluster.json'), 'utf8')
        .then((text) => JSON.parse(text) as { clusterId: string })
        .catch(() => undefined),
    { timeoutMs: 30_000, what: 'the first agent writing its cluster' },
  );
  await eventually(() => demo.output().includes(midway), {
    timeoutMs: 120_000,
    what: `the demo printing "${midway}"`,
  });
  demo.child.kill(signal);
  t.is(await demo.exited, EXIT_CODES[signal], demo.output());
  t.deepEqual(
    await leftovers(DEMO_RANGES, root.slice(tmpdir().length + 1)),
    nothing,
    `the demo after ${signal}`,
  );
  const label = [`mesh.cluster=${clusterId}`];
  t.deepEqual(await docker.listContainers({ all: true, filters: { label } }), [], 'containers');
  t.deepEqual(await docker.listNetworks({ filters: { label } }), [], 'networks');
}

/** bench:partition started, once a node is cut off. */
async function partitioned(t: ExecutionContext) {
  const bench = start('test/bench/partition.js', ['--rounds', '1', '--partition-ms', '120000']);
  stopOnTeardown(t, bench.child);
  await eventually(
    async () => {
      const { stdout } = await run('iptables', ['-w', '-S', PARTITION_CHAIN]).catch(() => ({
        stdout: '',
      }));
      // Its own cut: a chain a failed run left could hold a rule before this one started.
      const agents = await processesNaming(join(tmpdir(), 'mesh-bench-partition-'));
      return stdout.includes('-j DROP') && agents.length >= 3;
    },
    { timeoutMs: 90_000, intervalMs: 200, what: 'the partition cut' },
  );
  return bench;
}

/** Runs bench:partition, stops it with the signal while a node is cut off; what it left, checked. */
async function interruptPartition(
  t: ExecutionContext,
  signal: keyof typeof EXIT_CODES,
): Promise<void> {
  const bench = await partitioned(t);
  bench.child.kill(signal);
  t.is(await bench.exited, EXIT_CODES[signal], bench.output());
  t.deepEqual(
    await leftovers(PARTITION_RANGES, 'mesh-bench-partition-'),
    nothing,
    `bench:partition after ${signal}`,
  );
}

/** How a harness exits on each signal, as a shell reports it. */
const EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;

// The demo with Docker (its containers are checked); each run after the other, on one block.
dockerTest(
  'the demo stopped with SIGINT while deploying, or SIGTERM while serving, leaves nothing',
  async (t, docker) => {
    await interruptDemo(t, docker, 'SIGINT', 'mesh demo: mesh deploy');
    await interruptDemo(t, docker, 'SIGTERM', 'Ctrl-C removes the stack');
  },
);

// SIGHUP: the terminal it ran in closed.
test('bench:partition stopped with SIGINT or SIGHUP mid-partition leaves nothing behind; killed with SIGKILL, its next start sweeps what it left', async (t) => {
  await interruptPartition(t, 'SIGINT');
  await interruptPartition(t, 'SIGHUP');

  const killed = await partitioned(t);
  t.teardown(() => sweepLeftovers('bench-partition')); // should the test fail before the next run
  killed.child.kill('SIGKILL');
  await killed.exited;
  const left = await leftovers(PARTITION_RANGES, 'mesh-bench-partition-');
  t.true(left.processes.length >= 3, 'its agents outlived it (their own process groups)');
  t.true(left.rules.length > 0, 'and so did its rules');
  const next = start('test/bench/partition.js', ['--rounds', '0']);
  stopOnTeardown(t, next.child);
  t.is(await next.exited, 0, next.output());
  t.regex(next.output(), /removing what a killed run left \(\/tmp\/mesh-bench-partition-/);
  t.deepEqual(
    await leftovers(PARTITION_RANGES, 'mesh-bench-partition-'),
    nothing,
    'nothing left once the next run is over',
  );
});
