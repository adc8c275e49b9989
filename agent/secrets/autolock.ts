import type { Logger } from 'pino';
import type { NodeRecord } from '../../mesh/api/nodes.js';
import type { AutolockSetting } from '../../mesh/api/secrets.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import { keyId, newKey } from '../../mesh/secrets/sealing.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';
import type { StateAccess } from '../cluster/state-access.js';
import { ConflictError, ForbiddenError, InvalidError } from '../errors.js';
import { repeatOneAtATime } from '../repeat.js';
import { decodeUnlockKey, encodeUnlockKey } from './key-file.js';
import { AUTOLOCK_SETTING, type Keyring } from './keyring.js';

const LOCK_STATE = 'keys.lock-state';
const REWRAP = 'keys.rewrap';
const SETTING_RETRY_MS = 1000;

/** What a node that may hold the voters' key says of its copy. */
interface LockState {
  holds: boolean;
  lock: 'off' | 'locked' | 'unlocked';
}

/**
 * Autolock, as Swarm's: while it is on, every copy of the voters' key on a disk is wrapped with an
 * unlock key that no disk holds, so a voter that starts again opens no secret and signs nothing
 * until `mesh unlock`, and a copied data dir opens neither the CA key nor any secret. Turning it on
 * or off, or rotating the unlock key, wraps every holder's copy again, and is refused while a holder
 * is locked or unreachable (its copy would stay under the old key).
 */
export class Autolock {
  private stopWriting: (() => void) | undefined;

  constructor(
    private readonly options: {
      keyring: Keyring;
      state: ClusterState;
      raft: RaftNode;
      access: StateAccess;
      transport: Transport;
      log: Logger;
    },
  ) {
    const fromVoter = (nodeId: string) => {
      if (!options.raft.membership.voters.includes(nodeId))
        throw new ForbiddenError(
          `node ${nodeId} is not a voter: autolock changes come from voters`,
        );
    };
    options.transport.handle(LOCK_STATE, async (_body, from) => {
      fromVoter(from.nodeId);
      return this.lockState();
    });
    options.transport.handle(REWRAP, async (body, from) => {
      fromVoter(from.nodeId);
      const hex = (body as { unlockKey?: unknown } | null)?.unlockKey;
      await this.file.rewrap(typeof hex === 'string' ? Buffer.from(hex, 'hex') : undefined);
      return {};
    });
  }

  private get file() {
    return this.options.keyring.keyFile;
  }

  private setting() {
    return this.options.state.setting(AUTOLOCK_SETTING);
  }

  /** `mesh init --autolock`: the setting is written once the cluster can write. */
  start(): void {
    const unlockKey = this.file.currentUnlockKey;
    if (!unlockKey || this.setting()) return;
    this.stopWriting = repeatOneAtATime(
      SETTING_RETRY_MS,
      async () => {
        if (!this.setting()) await this.writeSetting(unlockKey);
        this.stop();
      },
      (error) => this.options.log.debug({ reason: error.message }, 'autolock not recorded yet'),
    );
  }

  stop(): void {
    this.stopWriting?.();
  }

  /** What this node's copy of the voters' key is: none, plain, wrapped and opened, or locked. */
  async lockState(): Promise<LockState> {
    const lock = await this.file.lock();
    if (lock === 'locked') return { holds: true, lock };
    return { holds: (await this.file.read()) !== undefined, lock };
  }

  /** `mesh unlock`: opens this node's copy with the unlock key, or refuses saying why. */
  async unlock(text: unknown): Promise<{ unlocked: true }> {
    if (typeof text !== 'string') throw new InvalidError('mesh unlock needs the unlock key');
    const key = await this.file.unlock(decodeUnlockKey(text));
    const wanted = this.options.keyring.wantedKeyId();
    this.options.keyring.report(
      wanted === undefined || wanted === keyId(key) ? keyId(key) : undefined,
    );
    this.options.log.info('unlocked: the voters’ key is open on this node again');
    return { unlocked: true };
  }

  /** `mesh unlock-key`: the unlock key, from a node that was given it since it started. */
  unlockKey(): { unlockKey: string } {
    if (!this.setting()) throw new InvalidError('autolock is off (mesh cluster autolock on)');
    const key = this.file.currentUnlockKey;
    if (!key)
      throw new ForbiddenError(
        'this node does not know the unlock key (it is locked, or holds no voters’ key): ask a manager that is unlocked',
      );
    return { unlockKey: encodeUnlockKey(key) };
  }

  /** `mesh cluster autolock on|off`; with on, the new unlock key (shown once). */
  async turn(on: boolean): Promise<{ unlockKey?: string }> {
    this.options.access.requireManager();
    if (on && this.setting())
      throw new ConflictError('autolock is on already; mesh unlock-key prints its unlock key');
    if (!on && !this.setting()) throw new ConflictError('autolock is off already');
    if (!on) {
      await this.rewrapEverywhere(undefined);
      await this.options.access.writeConditionally(() => [
        { op: 'delete', kind: 'settings', id: AUTOLOCK_SETTING },
      ]);
      this.options.log.info('autolock off: the voters’ key is kept in plain files again');
      return {};
    }
    return this.newUnlockKey();
  }

  /** `mesh unlock-key --rotate`: a new unlock key; the one before opens nothing from then on. */
  async rotate(): Promise<{ unlockKey: string }> {
    this.options.access.requireManager();
    if (!this.setting()) throw new InvalidError('autolock is off (mesh cluster autolock on)');
    return this.newUnlockKey();
  }

  private async newUnlockKey(): Promise<{ unlockKey: string }> {
    const key = newKey();
    await this.rewrapEverywhere(key);
    await this.writeSetting(key);
    this.options.log.info('autolock on, with a new unlock key');
    return { unlockKey: encodeUnlockKey(key) };
  }

  private async writeSetting(key: Buffer): Promise<void> {
    const value: AutolockSetting = { unlockKeyId: keyId(key), since: new Date().toISOString() };
    const stored = this.setting();
    await this.options.access.writeConditionally(() => [
      { op: 'put', kind: 'settings', id: AUTOLOCK_SETTING, value, ifVersion: stored?.version ?? 0 },
    ]);
  }

  /**
   * Wraps every copy of the voters' key again, under this unlock key (undefined: in plain text):
   * first every node that may hold one is asked whether it can (none locked, none unreachable),
   * then each does it.
   */
  private async rewrapEverywhere(unlockKey: Buffer | undefined): Promise<void> {
    const { raft, state, transport } = this.options;
    const self = raft.raft.id;
    const others = [...raft.membership.voters, ...raft.membership.learners].filter((id) => {
      const record = state.get('nodes', id)?.value;
      return id !== self && record && !record.workerOnly && record.status !== 'removed';
    });
    const at = (id: string) => ({
      address: state.get('nodes', id)?.value.address ?? '',
      nodeId: id,
    });
    const blocked: string[] = [];
    const holders: string[] = [];
    if ((await this.lockState()).lock === 'locked') blocked.push(`${self} (this node is locked)`);
    for (const id of others) {
      try {
        const answer = (await transport.request(at(id), LOCK_STATE, {})) as LockState;
        if (answer.lock === 'locked') blocked.push(`${id} (locked: mesh unlock it first)`);
        else if (answer.holds) holders.push(id);
      } catch (error) {
        blocked.push(`${id} (${(error as Error).message})`);
      }
    }
    if (blocked.length > 0)
      throw new ConflictError(
        `every holder of the voters' key must be reachable and unlocked to change autolock; not: ${blocked.join(', ')}`,
      );
    const body = { unlockKey: unlockKey?.toString('hex') ?? null };
    for (const id of holders) await transport.request(at(id), REWRAP, body);
    await this.file.rewrap(unlockKey);
    if (unlockKey) await this.recordHolders(holders);
  }

  /** The holders as the cluster records them: none is handed the key again while autolocked. */
  private async recordHolders(holders: string[]): Promise<void> {
    const given = this.options.keyring.wantedKeyId();
    if (!given) return;
    const { state, access } = this.options;
    await access.writeConditionally(() =>
      holders.flatMap((id) => {
        const stored = state.get('nodes', id);
        if (!stored || stored.value.votersKeyGiven === given) return [];
        const value: NodeRecord = { ...stored.value, votersKeyGiven: given };
        return [
          { op: 'put' as const, kind: 'nodes' as const, id, value, ifVersion: stored.version },
        ];
      }),
    );
  }
}
