import type { Logger } from 'pino';
import type { NodeRecord } from '../../mesh/api/nodes.js';
import type { Sealed, SecretsKeySetting } from '../../mesh/api/secrets.js';
import { LimitedLog } from '../../mesh/limited-log.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import { keyId, newKey, open, seal } from '../../mesh/secrets/sealing.js';
import { everyShared } from '../../mesh/shared-interval.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';
import type { StateAccess } from '../cluster/state-access.js';
import { UnavailableError } from '../errors.js';
import { LockedError, VotersKeyFile } from './key-file.js';

const FETCH = 'keys.fetch';
// A new learner holds the key (and may be seated) within about this.
const HOLD_CHECK_MS = 1000;
export const SECRETS_KEY_SETTING = 'secrets-key';
export const AUTOLOCK_SETTING = 'autolock';

/** What a voter answers a node it hands the voters' key to. */
interface HandedKey {
  key: string;
  /** With autolock on: the unlock key, so that the new holder wraps its copy too. */
  unlockKey?: string;
}

/**
 * The keys that protect secrets. The data key seals every secret and config; it is kept in the
 * replicated state only sealed with the voters' key, which lives only on the nodes that may be
 * seated as voters (in their data dirs, 0600, wrapped with autolock): each asks a voter for it
 * over the cluster's mTLS as soon as it is a member, and says so in gossip, and the leader seats a
 * learner only once it has (so the key outlives any one voter). Only a voter uses it; a node that
 * joined with a worker token never holds it, and a removed one deletes its copy. So a log, a
 * snapshot or a worker's disk never holds anything that opens a secret.
 */
export class Keyring {
  /** The voters' key on this node's disk, plain or wrapped (autolock). */
  readonly keyFile: VotersKeyFile;
  private dataKey: { id: string; key: Buffer } | undefined;
  private opening: Promise<unknown> = Promise.resolve();
  private making: Promise<Buffer> | undefined;
  private stopHolding: (() => void) | undefined;
  private held: string | undefined;
  private readonly failures: LimitedLog;

  constructor(
    private readonly options: {
      nodeId: string;
      dataDir: string;
      state: ClusterState;
      raft: RaftNode;
      access: StateAccess;
      transport: Transport;
      log: Logger;
      /** Whether this node may hold the voters' key: it joined with a manager token, is not removed. */
      mayHold: () => boolean;
      /** Told the ID of the voters' key this node holds and may use (undefined: none), to gossip it. */
      onHeld: (keyId: string | undefined) => void;
      /** `mesh init --autolock`: the unlock key this node's copy is wrapped with from the start. */
      unlockKey?: Buffer;
    },
  ) {
    this.keyFile = new VotersKeyFile(options.dataDir, options.unlockKey);
    this.failures = new LimitedLog(options.log, 1);
    options.transport.handle(FETCH, (_body, from) => this.serveVoterKey(from.nodeId));
  }

  /** Holds the voters' key while this node may, and says so; drops it when it may not. */
  start(): void {
    this.stopHolding = everyShared(HOLD_CHECK_MS, () => {
      this.followSeat().catch((error: Error) =>
        this.failures.warn(
          this.options.nodeId,
          { reason: error.message },
          'could not take the voters’ key yet',
        ),
      );
    });
  }

  stop(): void {
    this.stopHolding?.();
  }

  /**
   * A node that may be seated holds the voters' key as soon as it is a member (while a voter that
   * has it is there), and tells the cluster; one that may not drops it. A locked one (autolock)
   * holds it but may not use it, and fetches none, until mesh unlock.
   */
  private async followSeat(): Promise<void> {
    if (!this.options.mayHold()) return this.forget();
    const wanted = this.wantedKeyId();
    let own: Buffer | undefined;
    try {
      own = await this.keyFile.read();
    } catch (error) {
      if (!(error instanceof LockedError)) throw error;
      return this.report(undefined);
    }
    const { raft, nodeId } = this.options;
    const member = this.isVoter() || raft.membership.learners.includes(nodeId);
    if (wanted && member && (!own || keyId(own) !== wanted)) own = await this.voterKeyFor(wanted);
    this.report(own && (wanted === undefined || keyId(own) === wanted) ? keyId(own) : undefined);
  }

  /** Tells the cluster (once per change) which voters' key this node holds and may use. */
  report(held: string | undefined): void {
    if (held === this.held) return;
    this.held = held;
    this.options.onHeld(held);
  }

  /** The ID of the voters' key the state's sealed values name, if any. */
  wantedKeyId(): string | undefined {
    const { state } = this.options;
    return state.setting('ca')?.value.keyId ?? state.setting(SECRETS_KEY_SETTING)?.value.keyId;
  }

  /** The voters' key to seal with: the one the state names, else this voter's own (or a new one). */
  private async currentVoterKey(): Promise<Buffer> {
    const wanted = this.wantedKeyId();
    if (wanted) return this.voterKeyFor(wanted);
    // One at a time: the first node seals its CA as the first secret is made, and two keys made at
    // once would each seal a value while the disk kept only one (the other value lost at restart).
    this.making ??= this.ownOrNewVoterKey().finally(() => {
      this.making = undefined;
    });
    return this.making;
  }

  private async ownOrNewVoterKey(): Promise<Buffer> {
    const key = (await this.keyFile.read()) ?? newKey();
    await this.keyFile.write(key);
    return key;
  }

  /** Seals with the voters' key: what only voters may open (the CA key, the join secret). */
  async voterSeal(plain: Buffer): Promise<{ keyId: string; sealed: Sealed }> {
    const key = await this.currentVoterKey();
    return { keyId: keyId(key), sealed: seal(key, plain) };
  }

  /** The voters' key itself, on a voter: for a backup that must restore without this cluster. */
  async votersKey(): Promise<Buffer> {
    if (!this.isVoter()) throw new UnavailableError(`node ${this.options.nodeId} is not a voter`);
    return this.currentVoterKey();
  }

  async voterOpen(sealed: { keyId: string; sealed: Sealed }): Promise<Buffer> {
    if (!this.isVoter()) throw new UnavailableError(`node ${this.options.nodeId} is not a voter`);
    return open(await this.voterKeyFor(sealed.keyId), sealed.sealed);
  }

  private isVoter(id = this.options.nodeId): boolean {
    return this.options.raft.membership.voters.includes(id);
  }

  /** A node that may not hold the voters' key (removed) deletes its copy. */
  private async forget(): Promise<void> {
    if ((await this.keyFile.lock()) === 'off' && !(await this.keyFile.read())) return;
    this.options.log.info('this node may not hold the voters’ key: dropping it');
    this.dataKey = undefined;
    await this.keyFile.remove();
    this.report(undefined);
  }

  /**
   * Who is handed the voters' key: a voter, or a learner that may be seated (it joined with a
   * manager token and was not removed), so that it holds the key before its seat. With autolock
   * on, a node is handed it once: from then on it opens its own copy with mesh unlock, so a copy
   * of its data dir cannot ask for the key again.
   */
  private async serveVoterKey(requester: string): Promise<HandedKey> {
    const { state, raft, access } = this.options;
    const record = state.get('nodes', requester)?.value;
    const learner = raft.membership.learners.includes(requester);
    const seatable = learner && record && !record.workerOnly && record.status !== 'removed';
    if (!this.isVoter(requester) && !seatable)
      throw new Error(
        record?.workerOnly
          ? `node ${requester} joined with a worker token: the voters' key is never handed to it`
          : `node ${requester} may not be seated: the voters' key is for voters and their successors`,
      );
    const key = await this.keyFile.read();
    if (!key) throw new Error(`node ${this.options.nodeId} does not hold the secrets key`);
    const autolocked = state.setting(AUTOLOCK_SETTING) !== undefined;
    const unlockKey = autolocked ? this.keyFile.currentUnlockKey : undefined;
    if (autolocked) {
      if (!unlockKey) throw new Error(`node ${this.options.nodeId} is locked (autolock)`);
      if (this.isVoter(requester) || record?.votersKeyGiven === keyId(key))
        throw new Error(
          `node ${requester} holds the voters' key already: with autolock on, it opens its own copy with "mesh unlock"`,
        );
      await access.writeConditionally(() => {
        const stored = state.get('nodes', requester);
        if (!stored) return [];
        const value: NodeRecord = { ...stored.value, votersKeyGiven: keyId(key) };
        return [{ op: 'put', kind: 'nodes', id: requester, value, ifVersion: stored.version }];
      });
    }
    this.options.log.info({ to: requester }, 'handed the voters’ key over');
    return { key: key.toString('hex'), ...(unlockKey && { unlockKey: unlockKey.toString('hex') }) };
  }

  /** The voters' key with this ID: this node's own, or asked of the other voters. */
  private async voterKeyFor(id: string): Promise<Buffer> {
    const own = await this.keyFile.read();
    if (own && keyId(own) === id) return own;
    const { raft, state, transport, nodeId } = this.options;
    const reasons: string[] = [];
    for (const voter of raft.membership.voters.filter((v) => v !== nodeId)) {
      const address = state.get('nodes', voter)?.value.address;
      if (!address) continue;
      try {
        const handed = (await transport.request(
          { address, nodeId: voter },
          FETCH,
          {},
        )) as HandedKey;
        const fetched = Buffer.from(handed.key, 'hex');
        if (keyId(fetched) !== id) throw new Error('it holds another key');
        this.keyFile.adoptUnlockKey(
          handed.unlockKey ? Buffer.from(handed.unlockKey, 'hex') : undefined,
        );
        await this.keyFile.write(fetched);
        this.options.log.info({ from: voter }, 'received the secrets key from a voter');
        return fetched;
      } catch (error) {
        reasons.push(`${voter}: ${(error as Error).message}`);
      }
    }
    throw new UnavailableError(
      `no voter could hand over the secrets key (${reasons.join('; ') || 'no other voter known'})`,
    );
  }

  /**
   * The data key, opened on this voter. The first one needed makes it (and the voters' key, when
   * no voter has one), written only if no other voter wrote one meanwhile.
   */
  private openDataKey(): Promise<Buffer> {
    // One at a time: two values sealed at once must not both make a key.
    const next = this.opening.then(
      () => this.openDataKeyNow(),
      () => this.openDataKeyNow(),
    );
    this.opening = next;
    return next;
  }

  private async openDataKeyNow(): Promise<Buffer> {
    if (!this.isVoter())
      throw new UnavailableError(
        `node ${this.options.nodeId} is not a voter: only voters open secrets`,
      );
    const setting = this.options.state.setting(SECRETS_KEY_SETTING);
    if (setting) {
      if (this.dataKey?.id === setting.value.keyId + setting.version) return this.dataKey.key;
      const key = open(await this.voterKeyFor(setting.value.keyId), setting.value.sealed);
      this.dataKey = { id: setting.value.keyId + setting.version, key };
      return key;
    }
    const voterKey = await this.currentVoterKey();
    const value: SecretsKeySetting = { keyId: keyId(voterKey), sealed: seal(voterKey, newKey()) };
    await this.options.access.propose({
      op: 'put',
      kind: 'settings',
      id: SECRETS_KEY_SETTING,
      value,
      ifVersion: 0,
    });
    // Whoever won, the state now holds the data key: open that one.
    return this.openDataKeyNow();
  }

  async seal(plain: Buffer): Promise<Sealed> {
    return seal(await this.openDataKey(), plain);
  }

  async open(sealed: Sealed): Promise<Buffer> {
    return open(await this.openDataKey(), sealed);
  }
}
