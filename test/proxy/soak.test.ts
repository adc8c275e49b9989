/**
 * bench:soak in its quick mode (30 s, 50 keep-alive connections): the data plane under steady
 * load through a rolling update, an agent killed and back, and a secret update, with nothing
 * failed through the node the clients use, every WebSocket still open and no descriptor left
 * behind. (Memory growth needs the full run: `npm run bench:soak`.) Loopback block 127.0.96.0/24.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const run = promisify(execFile);
const SOAK = fileURLToPath(new URL('../bench/soak.js', import.meta.url));

/** wrk drives the load (Debian: `wrk`; .ci/run installs it); a test never installs anything. */
const wrkMissing = await run('sh', ['-c', 'command -v wrk']).then(
  () => undefined,
  () => 'wrk is not installed (Debian: wrk)',
);

const soakTest = wrkMissing ? test.skip : test;
soakTest(
  `30 s of load through a rolling update, a killed agent and a secret update: nothing failed, every WebSocket open, no descriptor left${wrkMissing ? ` [skipped: ${wrkMissing}]` : ''}`,
  async (t) => {
    const { stdout } = await run(
      process.execPath,
      [SOAK, '--seconds', '30', '--slice-seconds', '10', '--connections', '50', '--json'],
      { timeout: 240_000, maxBuffer: 16 * 1024 * 1024 },
    );
    const result = JSON.parse(stdout) as {
      events: Array<{ what: string }>;
      failed: number;
      websocketsOpen: number;
      fdDrift: number[];
      slices: Array<{ http: { rps: number } }>;
    };
    t.is(result.events.length, 3, 'the update, the kill and the secret update all happened');
    t.true(
      result.slices.every((s) => s.http.rps > 0),
      'load went through every slice',
    );
    t.is(result.failed, 0, JSON.stringify(result.slices));
    t.is(result.websocketsOpen, 50);
    // Not more than 10 descriptors over the start: fewer is no leak.
    for (const drift of result.fdDrift) t.true(drift <= 10, `fd drift ${drift}`);
  },
);
