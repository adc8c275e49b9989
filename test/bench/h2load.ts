import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { note } from './harness.js';
import { millis } from './wrk.js';

const run = promisify(execFile);

export interface H2loadResult {
  rps: number;
  /** Requests that failed, errored or timed out, and answers other than 2xx. */
  errors: number;
  meanMs: number;
  maxMs: number;
}

/**
 * h2load (HTTP/2 over TLS, ALPN h2: a thread and 32 connections a core, -m10 streams each) for a
 * bounded time against a URL whose host name is in `hosts` (name → address): h2load takes the
 * server name it sends (SNI) and :authority from the URL, so it runs in a mount namespace of its
 * own where /etc/hosts says those names; the machine's file is not touched.
 */
export async function h2load(
  root: string,
  hosts: Record<string, string>,
  url: string,
  seconds: number,
  cores = 1,
): Promise<H2loadResult> {
  const file = join(root, 'h2load-hosts');
  writeFileSync(
    file,
    Object.entries(hosts)
      .map(([name, address]) => `${address} ${name}\n`)
      .join(''),
  );
  const { stdout } = await run(
    'unshare',
    [
      '--mount',
      'sh',
      '-c',
      `mount --bind "$0" /etc/hosts && exec h2load -t${cores} -c${32 * cores} -m10 -D ${seconds} "$1"`,
      file,
      url,
    ],
    { timeout: (seconds + 30) * 1000 },
  );
  const rps = Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(stdout)?.[1]);
  if (!Number.isFinite(rps)) throw new Error(`unreadable h2load output:\n${stdout}`);
  const [failed = 0, errored = 0, timedOut = 0] = (
    /(\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout)?.slice(1) ?? []
  ).map(Number);
  const [, c3 = 0, c4 = 0, c5 = 0] = (
    /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout)?.slice(1) ?? []
  ).map(Number);
  const errors = failed + errored + timedOut + c3 + c4 + c5;
  if (errors > 0) note(`  ${url}: ${errors} requests failed or were not 2xx`);
  // Its columns: min, max, mean (h2load gives no percentiles).
  const [, , max, mean] = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(stdout) ?? [];
  return {
    rps: Math.round(rps),
    errors,
    meanMs: Math.round(millis(mean) * 100) / 100,
    maxMs: Math.round(millis(max) * 100) / 100,
  };
}
