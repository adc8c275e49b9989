import type { Logger } from 'pino';
import type { AuthoritySetting, NextAuthority } from '../../mesh/api/authority.js';
import type { Membership } from '../../mesh/membership/runtime.js';
import { ClusterCA } from '../../mesh/pki/ca.js';
import { certificatePin } from '../../mesh/pki/certificate.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import type { ClusterState, Outcome } from '../../mesh/state/cluster-state.js';
import type { StateAccess } from '../cluster/state-access.js';
import type { CaStatus } from '../control/api.js';
import { ConflictError, UnavailableError } from '../errors.js';
import { repeatOneAtATime } from '../repeat.js';
import type { Keyring } from '../secrets/keyring.js';
import type { Authority } from './authority.js';

// How often the leader looks whether every live node renewed under the next CA.
const FINISH_CHECK_MS = 1000;

/**
 * `mesh ca rotate`: a new CA, cross-signed by the current one and trusted beside it by every
 * node (from the replicated state); every node renews under it at once; once every live node has,
 * the leader makes it the only CA and retires the old one. A node away meanwhile comes back with
 * a token (`mesh join TOKEN --data-dir`), proving the key of its old certificate.
 */
export class CaRotation {
  private stopChecking: (() => void) | undefined;

  constructor(
    private readonly options: {
      clusterId: string;
      authority: Authority;
      keyring: Keyring;
      access: StateAccess;
      state: ClusterState;
      raft: RaftNode;
      membership: Membership;
      log: Logger;
    },
  ) {}

  start(): void {
    this.stopChecking = repeatOneAtATime(
      FINISH_CHECK_MS,
      () => this.finishIfDone(),
      (error) => this.options.log.warn({ reason: error.message }, 'CA rotation not finished yet'),
    );
  }

  stop(): void {
    this.stopChecking?.();
  }

  private stored() {
    const stored = this.options.authority.setting();
    if (!stored) throw new UnavailableError('the cluster CA is not in the cluster state yet');
    return stored;
  }

  /** Starts a rotation, on a manager; one at a time. */
  async rotate(): Promise<CaStatus> {
    const { access, authority, keyring, clusterId, log } = this.options;
    access.requireManager();
    const stored = this.stored();
    if (stored.value.next)
      throw new ConflictError(
        `a CA rotation is under way since ${stored.value.next.startedAt}; it ends once every live node renewed (waiting for ${this.waitingFor(stored.value.next).join(', ') || 'the leader to finish it'})`,
      );
    const current = await authority.ca();
    const next = await ClusterCA.create(clusterId);
    const sealed = await keyring.voterSeal(Buffer.from(next.exportKeyPem()));
    if (sealed.keyId !== stored.value.keyId)
      throw new ConflictError('the voters’ key changed meanwhile; retry');
    const value: AuthoritySetting = {
      ...stored.value,
      next: {
        certPem: next.certPem,
        crossPem: current.crossSign(next.certPem),
        sealedKey: sealed.sealed,
        startedAt: new Date().toISOString(),
      },
    };
    await this.write(value, stored.version);
    log.info({ next: next.pin }, 'CA rotation started: every node now trusts both CAs and renews');
    // As written: this replica may not have applied it yet.
    return this.status(value);
  }

  /** Where a rotation stands: the CAs' pins, and each live node's issuer. */
  status(value: AuthoritySetting = this.stored().value): CaStatus {
    const next = value.next;
    const nodes = this.liveMembers().map((m) => ({ id: m.id, caPin: m.meta.caPin ?? null }));
    const pin = next && certificatePin(next.certPem);
    return {
      current: certificatePin(value.certPem),
      next: pin ?? null,
      startedAt: next?.startedAt ?? null,
      retired: value.retired?.length ?? 0,
      nodes,
      waitingFor: pin ? nodes.filter((n) => n.caPin !== pin).map((n) => n.id) : [],
    };
  }

  /** Members alive (or only suspected) that the cluster did not remove. */
  private liveMembers() {
    const { membership, state } = this.options;
    return membership
      .members()
      .filter((m) => m.status === 'alive' || m.status === 'suspect')
      .filter((m) => state.get('nodes', m.id)?.value.status !== 'removed');
  }

  private waitingFor(next: NextAuthority): string[] {
    const pin = certificatePin(next.certPem);
    return this.liveMembers()
      .filter((m) => m.meta.caPin !== pin)
      .map((m) => m.id);
  }

  /** On the leader: once every live node renewed under the next CA, it becomes the only one. */
  private async finishIfDone(): Promise<void> {
    if (this.options.raft.raft.role !== 'leader') return;
    const stored = this.options.authority.setting();
    const next = stored?.value.next;
    if (!stored || !next || this.waitingFor(next).length > 0) return;
    const { next: _done, ...rest } = stored.value;
    const value: AuthoritySetting = {
      ...rest,
      certPem: next.certPem,
      sealedKey: next.sealedKey,
      rotatedAt: new Date().toISOString(),
      retired: [...(stored.value.retired ?? []), stored.value.certPem],
    };
    await this.write(value, stored.version);
    this.options.log.info(
      { current: certificatePin(next.certPem) },
      'CA rotation finished: every live node renewed; the old CA is retired',
    );
  }

  private async write(value: AuthoritySetting, ifVersion: number): Promise<void> {
    const outcome = (await this.options.access.propose({
      op: 'put',
      kind: 'settings',
      id: 'ca',
      value,
      ifVersion,
    })) as Outcome;
    if (!outcome.ok) throw new ConflictError(`the cluster CA changed meanwhile: ${outcome.reason}`);
  }
}
