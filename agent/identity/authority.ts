import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AuthoritySetting, NextAuthority } from '../../mesh/api/authority.js';
import { withIssued } from '../../mesh/api/nodes.js';
import type { Sealed } from '../../mesh/api/secrets.js';
import type { JoinSecrets } from '../../mesh/join/service.js';
import { ClusterCA } from '../../mesh/pki/ca.js';
import { describeCertificate } from '../../mesh/pki/certificate.js';
import { encodeJoinToken, newJoinSecret } from '../../mesh/pki/token.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import type { ClusterState, Outcome } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';
import { askVoters } from '../cluster/ask-voters.js';
import type { StateAccess } from '../cluster/state-access.js';
import type { ClusterFile, DataDir } from '../datadir.js';
import { ForbiddenError, UnavailableError } from '../errors.js';
import { repeatOneAtATime } from '../repeat.js';
import type { Keyring } from '../secrets/keyring.js';
import { RETIRE_GRACE_MS } from './admission.js';

const TOKEN = 'authority.token';

/** A manager token admits a node that may be seated; a worker token, one that never is. */
export type TokenKind = 'manager' | 'worker';
const SETTING = 'ca';
// How often the node that made the cluster tries to hand its CA to the cluster state.
const PUBLISH_RETRY_MS = 1000;

/**
 * The cluster CA and the join secret, held by every voter: kept in the replicated state sealed
 * with the voters' key, so any voter signs joiners' certificates and makes tokens, and no other
 * node can. The node that ran `mesh init` starts with them on its disk; once the state holds
 * them, it removes its copy. A worker asked for a token gets it from a voter over mTLS.
 */
export class Authority {
  private local: { ca: ClusterCA; secret: string } | undefined;
  private opened:
    | { rotatedAt: string; ca: ClusterCA; secret: string; workerSecret?: string }
    | undefined;
  private openedNext: { startedAt: string; ca: ClusterCA } | undefined;
  private stopPublishing: (() => void) | undefined;

  constructor(
    private readonly options: {
      dir: DataDir;
      cluster: ClusterFile;
      /** The CA, on the node that made the cluster until the state holds it. */
      ca: ClusterCA | undefined;
      address: string;
      state: ClusterState;
      raft: RaftNode;
      access: StateAccess;
      keyring: Keyring;
      transport: Transport;
      log: Logger;
    },
  ) {
    const { ca, cluster } = options;
    if (ca && cluster.joinSecret) this.local = { ca, secret: cluster.joinSecret };
    options.transport.handle(TOKEN, (body, from) => this.tokenFor(from.nodeId, body));
  }

  start(): void {
    if (!this.local) return;
    this.stopPublishing = repeatOneAtATime(
      PUBLISH_RETRY_MS,
      () => this.publish(),
      (error) =>
        this.options.log.debug({ reason: error.message }, 'the CA is not in the state yet'),
    );
  }

  stop(): void {
    this.stopPublishing?.();
  }

  private isVoter(): boolean {
    return this.options.raft.membership.voters.includes(this.options.raft.raft.id);
  }

  setting() {
    return this.options.state.setting(SETTING);
  }

  /** The node that made the cluster puts its CA into the state, then forgets its own copy. */
  private async publish(): Promise<void> {
    const local = this.local;
    if (!local || !this.isVoter()) return;
    if (!this.setting()) {
      const { keyring, access } = this.options;
      const key = await keyring.voterSeal(Buffer.from(local.ca.exportKeyPem()));
      const secret = await keyring.voterSeal(Buffer.from(local.secret));
      const value: AuthoritySetting = {
        certPem: local.ca.certPem,
        keyId: key.keyId,
        sealedKey: key.sealed,
        sealedSecret: secret.sealed,
        rotatedAt: new Date().toISOString(),
        ...(this.options.cluster.certValidityMs
          ? { certValidityMs: this.options.cluster.certValidityMs }
          : {}),
      };
      const outcome = (await access.propose({
        op: 'put',
        kind: 'settings',
        id: SETTING,
        value,
        ifVersion: 0,
      })) as Outcome;
      if (!outcome.ok) throw new Error(outcome.reason);
    }
    // The state holds it (this write or an earlier one): the disk copy goes.
    const { dir, cluster, log } = this.options;
    await rm(join(dir.path, 'pki', 'ca.key'), { force: true });
    delete cluster.joinSecret;
    await dir.writeCluster(cluster);
    this.local = undefined;
    this.stop();
    log.info('the cluster CA and join secret are now held by every voter, sealed in the state');
  }

  /** The CA and secret: this node's own (before publishing), or opened from the state. */
  private async open(): Promise<{ ca: ClusterCA; secret: string; workerSecret?: string }> {
    if (this.local) return this.local;
    const stored = this.setting()?.value;
    if (!stored) throw new UnavailableError('the cluster CA is not in the cluster state yet');
    if (this.opened?.rotatedAt === stored.rotatedAt) return this.opened;
    const { keyring, cluster } = this.options;
    const keyPem = (
      await keyring.voterOpen({ keyId: stored.keyId, sealed: stored.sealedKey })
    ).toString();
    const openText = async (sealed: Sealed) =>
      (await keyring.voterOpen({ keyId: stored.keyId, sealed })).toString();
    this.opened = {
      rotatedAt: stored.rotatedAt,
      ca: ClusterCA.load(cluster.clusterId, stored.certPem, keyPem),
      secret: await openText(stored.sealedSecret),
      ...(stored.sealedWorkerSecret && {
        workerSecret: await openText(stored.sealedWorkerSecret),
      }),
    };
    return this.opened;
  }

  /** For joins: only a voter signs. */
  async ca(): Promise<ClusterCA> {
    return (await this.open()).ca;
  }

  /** How long the certificates this cluster issues last (days; undefined: the default). */
  validDays(): number | undefined {
    const ms = this.setting()?.value.certValidityMs ?? this.options.cluster.certValidityMs;
    return ms && ms / 86_400_000;
  }

  /** The next CA of a rotation under way, opened (a voter only). */
  private async openNext(next: NextAuthority): Promise<ClusterCA> {
    if (this.openedNext?.startedAt === next.startedAt) return this.openedNext.ca;
    const stored = this.setting()?.value as AuthoritySetting;
    const keyPem = (
      await this.options.keyring.voterOpen({ keyId: stored.keyId, sealed: next.sealedKey })
    ).toString();
    const ca = ClusterCA.load(this.options.cluster.clusterId, next.certPem, keyPem);
    this.openedNext = { startedAt: next.startedAt, ca };
    return ca;
  }

  /** CA certificates whose nodes may come back as themselves: current, next and retired ones. */
  issuers(): string[] {
    const stored = this.setting()?.value;
    if (!stored) return this.local ? [this.local.ca.certPem] : [];
    return [
      stored.certPem,
      ...(stored.next ? [stored.next.certPem] : []),
      ...(stored.retired ?? []),
    ];
  }

  /**
   * A renewed certificate for a node, for its new key: same node ID, a fresh validity; during a
   * CA rotation, issued by the next CA. It is recorded before it is handed over (a node is
   * admitted only with a recorded serial); the ones issued before are retired after a grace.
   */
  async sign(csrPem: string, nodeId: string): Promise<string> {
    const next = this.setting()?.value.next;
    const ca = next ? await this.openNext(next) : await this.ca();
    const issued = ca.issueFromCsr(csrPem, nodeId, this.validDays());
    const notAfter = describeCertificate(issued.certPem).notAfter.getTime();
    await this.recordIssued(nodeId, { serial: issued.serial, notAfter }, RETIRE_GRACE_MS);
    this.options.log.info({ renewed: nodeId, serial: issued.serial }, 'certificate renewed');
    return issued.certPem;
  }

  /**
   * This voter's own certificate, expired while it was off, issued again for its new key under
   * the serial the cluster recorded for it: the other voters' replicas can honour it at once,
   * before any write (with every voter's certificate expired, none could be recorded).
   */
  async reissueExpired(csrPem: string, expired: string): Promise<string> {
    const { nodeId, serial } = describeCertificate(expired);
    const ca = await this.ca();
    const issued = ca.issueFromCsr(csrPem, nodeId, this.validDays(), serial);
    this.options.log.info({ serial }, 'expired certificate issued again under its recorded serial');
    return issued.certPem;
  }

  /**
   * Writes a certificate issued to a node into its record, the ones before it retired in
   * `graceMs` (0: at once); refuses when the node is not recorded or was removed.
   */
  async recordIssued(
    nodeId: string,
    issued: { serial: string; notAfter: number },
    graceMs: number,
  ): Promise<void> {
    const { state, access } = this.options;
    await access.writeConditionally(() => {
      const stored = state.get('nodes', nodeId);
      if (!stored) throw new ForbiddenError(`node ${nodeId} is not a member of this cluster`);
      if (stored.value.status === 'removed')
        throw new ForbiddenError(`node ${nodeId} was removed (mesh node rm)`);
      const now = Date.now();
      const value = withIssued(stored.value, issued, now + graceMs, now);
      return [{ op: 'put', kind: 'nodes', id: nodeId, value, ifVersion: stored.version }];
    });
  }

  /** For joins: the secrets a token may prove, the worker one once it exists. */
  async secrets(): Promise<JoinSecrets> {
    const { secret, workerSecret } = await this.open();
    return { manager: secret, ...(workerSecret && { worker: workerSecret }) };
  }

  /** A join token whose seeds are this node and the other voters. */
  private encode(ca: ClusterCA, secret: string): string {
    const { state, raft, address, cluster } = this.options;
    const voters = raft.membership.voters
      .map((id) => state.get('nodes', id)?.value)
      .filter((n) => n && n.status !== 'down' && n.status !== 'left' && n.status !== 'removed')
      .map((n) => n?.address as string);
    const seeds = [...new Set([address, ...voters])];
    return encodeJoinToken({ clusterId: cluster.clusterId, seeds, caPin: ca.pin, secret });
  }

  /**
   * `mesh token [--worker]`: on a voter, made here; on another node, asked of a voter. A node that
   * joined with a worker token hands out none.
   */
  async token(kind: TokenKind = 'manager'): Promise<string> {
    this.refuseWorkerOnly(this.options.raft.raft.id);
    if (!this.isVoter())
      return askVoters<string>(this.options, TOKEN, { kind }, 'answered for a token');
    const { ca } = await this.open();
    return this.encode(ca, await this.secretOf(kind));
  }

  /** A token asked over mTLS by another node: not by one that joined with a worker token. */
  private tokenFor(requester: string, body: unknown): Promise<string> {
    this.refuseWorkerOnly(requester);
    const kind = (body as { kind?: unknown } | null)?.kind === 'worker' ? 'worker' : 'manager';
    return this.token(kind);
  }

  private refuseWorkerOnly(nodeId: string): void {
    if (this.options.state.get('nodes', nodeId)?.value.workerOnly)
      throw new ForbiddenError(
        `node ${nodeId} joined with a worker token: it hands out no tokens; run mesh token on a manager`,
      );
  }

  /** The join secret of a kind, the worker one made the first time it is asked for. */
  private async secretOf(kind: TokenKind): Promise<string> {
    const opened = await this.open();
    if (kind === 'manager') return opened.secret;
    return opened.workerSecret ?? this.storeSecret('worker', newJoinSecret());
  }

  /**
   * `mesh token --rotate [--worker]`, on a voter: a new join secret of that kind for the whole
   * cluster; tokens of the other kind go on working.
   */
  async rotate(kind: TokenKind = 'manager'): Promise<string> {
    if (!this.isVoter())
      throw new ForbiddenError(
        `node ${this.options.raft.raft.id} is a worker: rotate the join secret on a manager (a voter)`,
      );
    const { ca } = await this.open();
    const secret = newJoinSecret();
    if (this.local && kind === 'manager') {
      this.local.secret = secret;
      this.options.cluster.joinSecret = secret;
      await this.options.dir.writeCluster(this.options.cluster);
    } else await this.storeSecret(kind, secret);
    this.options.log.info({ kind }, 'join secret rotated: earlier tokens of its kind admit no one');
    return this.encode(ca, secret);
  }

  /** Seals a join secret of a kind into the CA setting, so every voter answers with it. */
  private async storeSecret(kind: TokenKind, secret: string): Promise<string> {
    const stored = this.setting();
    if (!stored) throw new UnavailableError('the cluster CA is not in the cluster state yet');
    const sealed = await this.options.keyring.voterSeal(Buffer.from(secret));
    if (sealed.keyId !== stored.value.keyId) throw new Error('the voters’ key changed meanwhile');
    const value: AuthoritySetting = {
      ...stored.value,
      ...(kind === 'manager'
        ? { sealedSecret: sealed.sealed }
        : { sealedWorkerSecret: sealed.sealed }),
      rotatedAt: new Date().toISOString(),
    };
    await this.options.access.writeConditionally(() => [
      { op: 'put', kind: 'settings', id: SETTING, value, ifVersion: stored.version },
    ]);
    return secret;
  }
}
