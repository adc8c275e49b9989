import { readFileSync } from 'node:fs';
import { cpus, hostname, machine, platform, totalmem } from 'node:os';
import type { NodeMeta, Platform } from '../../mesh/membership/messages.js';
import {
  certificatePin,
  describeCertificate,
  signedBy,
  splitPem,
} from '../../mesh/pki/certificate.js';
import type { NodeIdentity } from '../../mesh/pki/identity.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** This machine as placement constraints name it: uname's machine, and windows for win32. */
function thisPlatform(): Platform {
  return { os: platform() === 'win32' ? 'windows' : platform(), arch: machine() };
}

/** What a node gossips of its certificate: serial, expiry, and the CA that issued it. */
export function certificateMeta(
  identity: Pick<NodeIdentity, 'certPem' | 'caCertPem'>,
): Pick<NodeMeta, 'serial' | 'certExpires' | 'caPin'> {
  const { serial, notAfter } = describeCertificate(identity.certPem);
  const issuer = splitPem(identity.caCertPem).find((ca) => signedBy(identity.certPem, ca));
  return {
    serial,
    certExpires: notAfter.toISOString(),
    ...(issuer && { caPin: certificatePin(issuer) }),
  };
}

/** What this node tells the cluster about itself. */
export function nodeMeta(
  peerAddress: string,
  labels: Record<string, string>,
  identity: Pick<NodeIdentity, 'certPem' | 'caCertPem'>,
  runtimes: string[],
): NodeMeta {
  return {
    addresses: { peer: peerAddress },
    capacity: { cpus: cpus().length, memoryBytes: totalmem() },
    labels,
    raftRole: 'none',
    version: VERSION,
    hostname: hostname(),
    ...certificateMeta(identity),
    runtimes,
    platform: thisPlatform(),
  };
}
