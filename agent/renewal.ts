import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { NodeIdentity } from '../mesh/pki/identity.js';
import { createCsr, generateKeyPair } from '../mesh/pki/keys.js';
import type { RaftNode } from '../mesh/raft/node.js';
import type { ClusterState } from '../mesh/state/cluster-state.js';
import type { Transport } from '../mesh/transport/transport.js';
import { askVoters } from './ask-voters.js';
import type { Authority } from './authority.js';
import type { DataDir } from './datadir.js';
import { AgentError } from './provision.js';

const RENEW = 'authority.renew';

/** When a certificate is renewed: two thirds into its life. */
export function renewalTime(certPem: string): number {
  const cert = new X509Certificate(certPem);
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return from + ((to - from) * 2) / 3;
}

/**
 * Renews this node's certificate two thirds into its life, signed by a voter (this node, or
 * another asked over mTLS with the certificate still valid), for a new key; swapped into the
 * transport so that new connections present it while open ones go on.
 */
export class CertificateRenewal {
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;

  constructor(
    private readonly options: {
      identity: NodeIdentity;
      dir: DataDir;
      authority: Authority;
      raft: RaftNode;
      state: ClusterState;
      transport: Transport;
      /** Told the new certificate (gossiped metadata). */
      onRenewed: (identity: NodeIdentity) => void;
      log: Logger;
    },
  ) {
    options.transport.handle(RENEW, (body, from) =>
      options.authority.sign(String((body as { csrPem?: unknown })?.csrPem), from.nodeId),
    );
  }

  start(): void {
    const life = (() => {
      const cert = new X509Certificate(this.options.identity.certPem);
      return Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    })();
    // Often enough to renew within a tenth of its life, never more than once a second.
    const everyMs = Math.max(1000, Math.min(60_000, life / 10));
    this.timer = setInterval(() => this.check(), everyMs);
    // At once too: a voter back after its certificate expired renews it from its own replica.
    this.check();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    if (this.renewing || Date.now() < renewalTime(this.options.identity.certPem)) return;
    this.renewing = true;
    this.renew()
      .catch((error: Error) =>
        this.options.log.warn({ reason: error.message }, 'certificate not renewed yet; retrying'),
      )
      .finally(() => {
        this.renewing = false;
      });
  }

  private async renew(): Promise<void> {
    const { identity, raft, authority, transport, dir, log } = this.options;
    const keys = await generateKeyPair();
    const csrPem = createCsr(keys);
    const certPem = raft.membership.voters.includes(identity.nodeId)
      ? await authority.sign(csrPem, identity.nodeId)
      : await askVoters<string>(this.options, RENEW, { csrPem }, 'renewed the certificate');
    const renewed: NodeIdentity = { ...identity, keyPem: keys.privateKeyPem, certPem };
    await dir.writeIdentity(renewed);
    transport.renewIdentity(renewed);
    this.options.identity = renewed;
    this.options.onRenewed(renewed);
    log.info({ validTo: new X509Certificate(certPem).validTo }, 'this node’s certificate renewed');
  }
}

/**
 * A node whose certificate expired while it was off fails every handshake: a voter renews it at
 * once from its own replica of the CA (so a cluster powered off for months comes back by itself);
 * any other node needs a token, and is told so rather than left to fail.
 */
export function checkCertificateLife(
  identity: NodeIdentity,
  voters: string[],
  dataDir: string,
  log: Logger,
): void {
  const validTo = new X509Certificate(identity.certPem).validTo;
  if (Date.parse(validTo) > Date.now()) return;
  if (voters.includes(identity.nodeId)) {
    log.warn({ validTo }, 'this node’s certificate expired; as a voter it renews it itself now');
    return;
  }
  throw new AgentError(
    `this node's certificate expired on ${new Date(validTo).toISOString()} (it was off for longer than certificates last): ` +
      `get a token on a running node with "mesh token", then run "mesh join TOKEN --data-dir ${dataDir}": ` +
      `it comes back as node ${identity.nodeId}, with its labels and tasks`,
  );
}
