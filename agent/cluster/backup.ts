import type { Logger } from 'pino';
import type { RaftNode } from '../../mesh/raft/node.js';
import { type BackupFile, sealBackup } from '../../mesh/state/backup.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';
import { ForbiddenError } from '../errors.js';
import type { Keyring } from '../secrets/keyring.js';
import { askVoters } from './ask-voters.js';

const TAKE = 'backup.take';

/**
 * `mesh backup`: a consistent snapshot of the cluster state, read after a ReadIndex round (so it
 * holds everything committed when it was asked for), sealed on a voter. A worker asks a voter for
 * one sealed with the voters' key; a passphrase backup holds the voters' key itself, so only a
 * manager makes one.
 */
export class Backups {
  constructor(
    private readonly options: {
      clusterId: string;
      state: ClusterState;
      raft: RaftNode;
      keyring: Keyring;
      transport: Transport;
      log: Logger;
    },
  ) {
    options.transport.handle(TAKE, (_body, from) => {
      options.log.info({ for: from.nodeId }, 'taking a backup sealed with the voters’ key');
      return this.take({});
    });
  }

  async take(request: { passphrase?: string }): Promise<BackupFile> {
    const { raft, state, keyring, clusterId, log } = this.options;
    if (!raft.membership.voters.includes(raft.raft.id)) {
      if (request.passphrase !== undefined)
        throw new ForbiddenError(
          `node ${raft.raft.id} is a worker: a backup with a passphrase holds the voters' key, so take it on a manager (a voter), or leave out the passphrase for one sealed with the voters' key`,
        );
      return askVoters<BackupFile>(this.options, TAKE, {}, 'took a backup');
    }
    await raft.linearizableRead();
    const { appliedIndex, objects } = state.snapshot();
    const votersKey = await keyring.votersKey();
    const meta = { createdAt: new Date().toISOString(), index: appliedIndex };
    const file =
      request.passphrase === undefined
        ? sealBackup({ clusterId, objects }, meta, { votersKey })
        : sealBackup({ clusterId, objects, votersKey: votersKey.toString('hex') }, meta, {
            passphrase: request.passphrase,
          });
    log.info(
      { index: appliedIndex, counts: file.counts, encryption: file.encryption.method },
      'backup taken',
    );
    return file;
  }
}
