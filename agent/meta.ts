import { readFileSync } from 'node:fs';
import { cpus, hostname, machine, platform, totalmem } from 'node:os';
import type { NodeMeta, Platform } from '../mesh/membership/messages.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** This machine as placement constraints name it: uname's machine, and windows for win32. */
function thisPlatform(): Platform {
  return { os: platform() === 'win32' ? 'windows' : platform(), arch: machine() };
}

/** What this node tells the cluster about itself. */
export function nodeMeta(
  peerAddress: string,
  labels: Record<string, string>,
  certificate: { serial: string; notAfter: Date },
  runtimes: string[],
): NodeMeta {
  return {
    addresses: { peer: peerAddress },
    capacity: { cpus: cpus().length, memoryBytes: totalmem() },
    labels,
    raftRole: 'none',
    version: VERSION,
    hostname: hostname(),
    serial: certificate.serial,
    certExpires: certificate.notAfter.toISOString(),
    runtimes,
    platform: thisPlatform(),
  };
}
