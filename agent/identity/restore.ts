import type { AuthoritySetting } from '../../mesh/api/authority.js';
import type { NetworkSettings } from '../../mesh/api/network.js';
import { ClusterCA } from '../../mesh/pki/ca.js';
import { open } from '../../mesh/secrets/sealing.js';
import {
  type BackupContents,
  BackupError,
  restoredObjects,
  settingIn,
} from '../../mesh/state/backup.js';

/** `mesh init --restore FILE`: the opened backup, and the voters' key that opens what it seals. */
export interface Restore {
  contents: BackupContents;
  votersKey: Buffer;
  /** --keep-ca: the same cluster ID and CA (nodes of the old cluster are still not admitted). */
  keepCa: boolean;
}

/** What a cluster restored from a backup starts from. */
export interface RestoredStart {
  /** The backup's CA and cluster ID, with --keep-ca. */
  kept?: { clusterId: string; ca: ClusterCA };
  /** The first Raft snapshot: the restored objects, at the highest index they were written at. */
  snapshot: {
    index: number;
    data: { appliedIndex: number; objects: ReturnType<typeof restoredObjects> };
  };
  network?: NetworkSettings;
}

export function restoredStart(restore: Restore): RestoredStart {
  const objects = restoredObjects(restore.contents, restore.keepCa);
  // Versions only grow: the new log starts after every restored object's version.
  const index = Math.max(0, ...objects.flatMap(([, list]) => list.map((o) => o.version)));
  let kept: RestoredStart['kept'];
  if (restore.keepCa) {
    const ca = settingIn<AuthoritySetting>(objects, 'ca');
    if (!ca) throw new BackupError('--keep-ca: the backup holds no cluster CA');
    const keyPem = open(restore.votersKey, ca.sealedKey).toString();
    const clusterId = restore.contents.clusterId;
    kept = { clusterId, ca: ClusterCA.load(clusterId, ca.certPem, keyPem) };
  }
  return {
    kept,
    snapshot: { index, data: { appliedIndex: index, objects } },
    network: settingIn<NetworkSettings>(objects, 'network'),
  };
}
