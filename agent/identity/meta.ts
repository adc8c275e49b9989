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

/**
 * What this node gossips about itself, changed from one place: each change (an engine that came
 * up, the voters' key held, a port it cannot serve, a renewed certificate) is merged in and
 * published to the members once gossip runs.
 */
export class GossipedMeta {
  private published: ((meta: NodeMeta) => void) | undefined;

  constructor(private meta: NodeMeta) {}

  get current(): NodeMeta {
    return this.meta;
  }

  /** Where changes go from now on (membership, once it exists). */
  publishTo(publish: (meta: NodeMeta) => void): void {
    this.published = publish;
  }

  update(change: Partial<NodeMeta>): void {
    this.meta = { ...this.meta, ...change };
    this.published?.(this.meta);
  }
}
