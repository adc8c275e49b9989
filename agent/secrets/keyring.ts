import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { NodeRecord } from '../../mesh/api/nodes.js';
import type { Sealed, SecretsKeySetting } from '../../mesh/api/secrets.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import { KEY_BYTES, keyId, newKey, open, seal } from '../../mesh/secrets/sealing.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';
import type { StateAccess } from '../cluster/state-access.js';
import { writeAtomic } from '../datadir.js';
import { UnavailableError } from '../errors.js';

const FETCH = 'keys.fetch';
// A voter demoted (rare) drops the key within this.
const ROLE_CHECK_MS = 5000;
export const SECRETS_KEY_SETTING = 'secrets-key';

/** Where a voter keeps the voters' key (owner-only). */
export function votersKeyPath(dataDir: string): string {
  return join(dataDir, 'pki', 'secrets.key');
}

/**
 * The keys that protect secrets. The data key seals every secret and config; it is kept in the
 * replicated state only sealed with the voters' key, which lives on the voters alone (in their
 * data dirs, 0600): a voter that lacks it asks another voter over the cluster's mTLS, and a node
 * that stops being a voter deletes its copy. So a log, a snapshot or a worker's disk never holds
 * anything that opens a secret.
 */
export class Keyring {
  private voterKey: Buffer | undefined;
  private dataKey: { id: string; key: Buffer } | undefined;
  private opening: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly options: {
      nodeId: string;
      dataDir: string;
      state: ClusterState;
      raft: RaftNode;
      access: StateAccess;
      transport: Transport;
      log: Logger;
    },
  ) {
    options.transport.handle(FETCH, (_body, from) => this.serveVoterKey(from.nodeId));
  }

  private timer: NodeJS.Timeout | undefined;

  /** Watches this node's role: a node that stops being a voter drops the voters' key. */
  start(): void {
    this.timer = setInterval(() => {
      this.followRole().catch((error: Error) =>
        this.options.log.warn({ reason: error.message }, 'could not follow this node’s role'),
      );
    }, ROLE_CHECK_MS);
  }

  /**
   * A voter holds the voters' key as soon as it can (while another voter that has it is still
   * there); a node that is no longer a voter drops it.
   */
  private async followRole(): Promise<void> {
    if (!this.isVoter()) return this.forgetUnlessVoter();
    const wanted = this.wantedKeyId();
    const own = await this.ownVoterKey();
    if (wanted && (!own || keyId(own) !== wanted)) await this.voterKeyFor(wanted);
  }

  /** The ID of the voters' key the state's sealed values name, if any. */
  private wantedKeyId(): string | undefined {
    const { state } = this.options;
    return (
      state.get<{ keyId: string }>('settings', 'ca')?.value.keyId ??
      state.get<SecretsKeySetting>('settings', SECRETS_KEY_SETTING)?.value.keyId
    );
  }

  /** The voters' key to seal with: the one the state names, else this voter's own (or a new one). */
  private async currentVoterKey(): Promise<Buffer> {
    const wanted = this.wantedKeyId();
    if (wanted) return this.voterKeyFor(wanted);
    const key = (await this.ownVoterKey()) ?? newKey();
    await this.keepVoterKey(key);
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

  stop(): void {
    clearInterval(this.timer);
  }

  private get path(): string {
    return votersKeyPath(this.options.dataDir);
  }

  private isVoter(id = this.options.nodeId): boolean {
    return this.options.raft.membership.voters.includes(id);
  }

  private async forgetUnlessVoter(): Promise<void> {
    // Until it knows the voters (starting), a node cannot tell: it keeps what it has.
    if (this.isVoter() || this.options.raft.membership.voters.length === 0) return;
    if (this.voterKey) this.options.log.info('no longer a voter: dropping the secrets key');
    this.voterKey = undefined;
    this.dataKey = undefined;
    await rm(this.path, { force: true });
  }

  private async serveVoterKey(requester: string): Promise<{ key: string }> {
    if (!this.isVoter(requester))
      throw new Error(`node ${requester} is not a voter: the secrets key is for voters only`);
    const key = await this.ownVoterKey();
    if (!key) throw new Error(`node ${this.options.nodeId} does not hold the secrets key`);
    this.options.log.info({ voter: requester }, 'handed the secrets key to a voter');
    return { key: key.toString('hex') };
  }

  private async ownVoterKey(): Promise<Buffer | undefined> {
    if (this.voterKey) return this.voterKey;
    const text = await readFile(this.path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    const key = text === undefined ? undefined : Buffer.from(text.trim(), 'hex');
    if (key && key.length !== KEY_BYTES)
      throw new Error(`${this.path} is damaged: not a ${KEY_BYTES}-byte key`);
    this.voterKey = key;
    return key;
  }

  private async keepVoterKey(key: Buffer): Promise<void> {
    await writeAtomic(this.path, `${key.toString('hex')}\n`, 0o600);
    this.voterKey = key;
  }

  /** The voters' key with this ID: this node's own, or asked of the other voters. */
  private async voterKeyFor(id: string): Promise<Buffer> {
    const own = await this.ownVoterKey();
    if (own && keyId(own) === id) return own;
    const { raft, state, transport, nodeId } = this.options;
    const reasons: string[] = [];
    for (const voter of raft.membership.voters.filter((v) => v !== nodeId)) {
      const address = state.get<NodeRecord>('nodes', voter)?.value.address;
      if (!address) continue;
      try {
        const { key } = (await transport.request({ address, nodeId: voter }, FETCH, {})) as {
          key: string;
        };
        const fetched = Buffer.from(key, 'hex');
        if (keyId(fetched) !== id) throw new Error('it holds another key');
        await this.keepVoterKey(fetched);
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
    const setting = this.options.state.get<SecretsKeySetting>('settings', SECRETS_KEY_SETTING);
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
