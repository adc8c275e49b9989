import { readFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import type { NodeMeta } from '../mesh/membership/messages.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** What this node tells the cluster about itself. */
export function nodeMeta(
  peerAddress: string,
  labels: Record<string, string>,
  serial: string,
  runtimes: string[],
): NodeMeta {
  return {
    addresses: { peer: peerAddress },
    capacity: { cpus: cpus().length, memoryBytes: totalmem() },
    labels,
    raftRole: 'none',
    version: VERSION,
    hostname: hostname(),
    serial,
    runtimes,
  };
}
