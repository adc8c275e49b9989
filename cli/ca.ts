import type { CaStatus } from '../agent/control/api.js';
import { DATA_DIR, dataDirOf, durationOf, JSON_OUTPUT, parse, runSubcommand } from './args.js';
import { CA_COMMANDS } from './commands.js';
import { callAgent } from './control-client.js';
import { follow } from './follow.js';
import { print } from './output.js';

const POLL_MS = 500;

export function ca(args: string[]): Promise<number> {
  return runSubcommand('ca', args, { status, rotate }, CA_COMMANDS);
}

function short(pin: string | null): string {
  return pin ? pin.slice(0, 16) : '-';
}

function describe(s: CaStatus): string {
  const lines = [`current CA ${short(s.current)} (${s.retired} retired before it)`];
  if (s.next)
    lines.push(
      `rotating to ${short(s.next)} since ${s.startedAt}: ${s.nodes.length - s.waitingFor.length}/${s.nodes.length} live nodes renewed${s.waitingFor.length ? `, waiting for ${s.waitingFor.join(', ')}` : ''}`,
    );
  return lines.join('\n');
}

async function status(args: string[]): Promise<number> {
  const { values } = parse('ca status', args, { ...DATA_DIR, ...JSON_OUTPUT });
  const s = await callAgent(dataDirOf(values), 'GET /v1/ca', {});
  print(Boolean(values.json), s, () => describe(s));
  return 0;
}

/** Starts a rotation and follows it until the new CA is the only one, or the timeout. */
async function rotate(args: string[]): Promise<number> {
  const { values } = parse('ca rotate', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    detach: { type: 'boolean', short: 'd' },
    timeout: { type: 'string' },
  });
  const dataDir = dataDirOf(values);
  const timeoutMs = durationOf(values.timeout, '--timeout') ?? 300_000;
  const started = await callAgent(dataDir, 'POST /v1/ca/rotate', {});
  const target = started.next as string;
  if (!values.json)
    process.stderr.write(
      `mesh: rotating the cluster CA to ${short(target)}: every node trusts both and renews its certificate\n`,
    );
  if (values.detach) {
    print(Boolean(values.json), started, () => describe(started));
    return 0;
  }
  const retired = await follow(
    async () => {
      const now = await callAgent(dataDir, 'GET /v1/ca', {});
      const done = now.current === target && now.next === null;
      return {
        lines: done ? [] : [describe(now)],
        outcome: done ? now : undefined,
        late: `mesh: still rotating after ${timeoutMs / 1000} s (waiting for ${now.waitingFor.join(', ') || 'the leader'}); it goes on by itself, "mesh ca status" follows it`,
      };
    },
    { timeoutMs, intervalMs: POLL_MS, quiet: Boolean(values.json) },
  );
  if (!retired) return 1;
  print(Boolean(values.json), retired, () =>
    [
      `mesh: the cluster CA is now ${short(target)}; the old one is retired.`,
      'Earlier join tokens no longer work ("mesh token" prints a new one); a node that was away',
      'comes back with "mesh join TOKEN --data-dir DIR", keeping its ID.',
    ].join('\n'),
  );
  return 0;
}
