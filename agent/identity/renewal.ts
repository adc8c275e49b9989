import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuthoritySetting } from '../../mesh/api/authority.js';
import { bundlePem, signedBy, splitPem } from '../../mesh/pki/certificate.js';
import type { NodeIdentity } from '../../mesh/pki/identity.js';
import { createCsr, generateKeyPair } from '../../mesh/pki/keys.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import { everyShared } from '../../mesh/shared-interval.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';
import { askVoters } from '../cluster/ask-voters.js';
import type { DataDir } from '../datadir.js';
import { holdsVotersKey } from '../secrets/key-file.js';
import type { Authority } from './authority.js';
import { AgentError } from './provision.js';

const RENEW = 'authority.renew';
const CHECK_MS = 1000;

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
  private stopChecking: (() => void) | undefined;
  private stopWatching: (() => void) | undefined;
  private renewing = false;
  private renewsAt: { certPem: string; at: number } | undefined;
  private writing: Promise<void> = Promise.resolve();

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
    // Each second: cheap (the renewal time is worked out once per certificate), and a rotation's
    // renewal is retried soon after a failure.
    this.stopChecking = everyShared(CHECK_MS, () => this.check());
    this.stopWatching = this.options.state.watch(({ kind, id }) => {
      if (kind === 'settings' && id === 'ca') this.followTrust();
    });
    this.followTrust();
    // At once too: a voter back after its certificate expired renews it from its own replica.
    this.check();
  }

  stop(): void {
    this.stopChecking?.();
    this.stopWatching?.();
  }

  private setting(): AuthoritySetting | undefined {
    return this.options.state.setting('ca')?.value;
  }

  /** A CA rotation is under way and this node's certificate is not the next CA's yet. */
  private rotationPending(): boolean {
    const next = this.setting()?.next;
    return next !== undefined && !signedBy(this.options.identity.certPem, next.certPem);
  }

  /**
   * The identity with the trust the state names: the current CA and, mid-rotation, the next one;
   * presented with the cross-signed next CA once the certificate is the next CA's.
   */
  private withTrust(identity: NodeIdentity): NodeIdentity {
    const setting = this.setting();
    const next = setting?.next;
    // A replica behind this node's own certificate (it came back with a token after a rotation
    // it missed) names CAs that are no longer the cluster's: trust stays as the token set it.
    if (
      !setting ||
      !(
        signedBy(identity.certPem, setting.certPem) ||
        (next && signedBy(identity.certPem, next.certPem))
      )
    )
      return identity;
    const { chainPem: _previous, ...rest } = identity;
    const chainPem = next && signedBy(identity.certPem, next.certPem) ? next.crossPem : undefined;
    return {
      ...rest,
      caCertPem: bundlePem([setting.certPem, ...(next ? [next.certPem] : [])]),
      ...(chainPem && { chainPem }),
    };
  }

  /** The CAs changed (a rotation began or ended): trust them, and renew under the next one. */
  private followTrust(): void {
    const { identity, log } = this.options;
    const trusted = this.withTrust(identity);
    if (trusted.caCertPem !== identity.caCertPem || trusted.chainPem !== identity.chainPem) {
      this.swap(trusted).catch((error: Error) =>
        log.error({ reason: error.message }, 'could not keep the cluster’s CAs in the data dir'),
      );
      log.info(
        { trusted: splitPem(trusted.caCertPem).length },
        'now trusting the cluster CAs the state names',
      );
    }
    this.check();
  }

  private async swap(identity: NodeIdentity): Promise<void> {
    this.options.identity = identity;
    this.options.transport.renewIdentity(identity);
    this.options.onRenewed(identity);
    await this.persist(identity);
  }

  /** Writes the identity to the data dir, one write after the other: the last one stays. */
  private persist(identity: NodeIdentity): Promise<void> {
    const write = this.writing.then(() => this.options.dir.writeIdentity(identity));
    this.writing = write.catch(() => undefined); // the caller hears of a failure; the next write goes on
    return write;
  }

  private due(): boolean {
    const { certPem } = this.options.identity;
    if (this.renewsAt?.certPem !== certPem) this.renewsAt = { certPem, at: renewalTime(certPem) };
    return Date.now() >= this.renewsAt.at || this.rotationPending();
  }

  private check(): void {
    if (this.renewing || !this.due()) return;
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
    const { identity, raft, authority, transport, log } = this.options;
    const keys = await generateKeyPair();
    const csrPem = createCsr(keys);
    const expired = Date.parse(new X509Certificate(identity.certPem).validTo) <= Date.now();
    const certPem = !raft.membership.voters.includes(identity.nodeId)
      ? await askVoters<string>(this.options, RENEW, { csrPem }, 'renewed the certificate')
      : expired
        ? await authority.reissueExpired(csrPem, identity.certPem)
        : await authority.sign(csrPem, identity.nodeId);
    const renewed = this.withTrust({ ...identity, keyPem: keys.privateKeyPem, certPem });
    await this.persist(renewed);
    this.options.identity = renewed;
    transport.renewIdentity(renewed);
    this.options.onRenewed(renewed);
    log.info(
      {
        validTo: new X509Certificate(certPem).validTo,
        ...(renewed.chainPem && { underNextCa: true }),
      },
      'this node’s certificate renewed',
    );
  }
}

/**
 * A node whose certificate expired while it was off fails every handshake: a voter that holds the
 * voters' key renews it at once from its own replica of the CA (so a cluster powered off for
 * months comes back by itself); any other node needs a token, and is told so rather than left to
 * fail.
 */
export function checkCertificateLife(
  identity: NodeIdentity,
  voters: string[],
  dataDir: string,
  log: Logger,
): void {
  const validTo = new X509Certificate(identity.certPem).validTo;
  if (Date.parse(validTo) > Date.now()) return;
  // Without the voters' key (a voter seated just before it went off) it cannot open the CA, and
  // with an expired certificate no other voter hands the key over.
  if (voters.includes(identity.nodeId) && holdsVotersKey(dataDir)) {
    log.warn({ validTo }, 'this node’s certificate expired; as a voter it renews it itself now');
    return;
  }
  throw new AgentError(
    `this node's certificate expired on ${new Date(validTo).toISOString()} (it was off for longer than certificates last): ` +
      `get a token on a running node with "mesh token", then run "mesh join TOKEN --data-dir ${dataDir}": ` +
      `it comes back as node ${identity.nodeId}, with its labels and tasks`,
  );
}
