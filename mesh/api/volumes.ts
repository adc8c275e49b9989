/** volumes/<name>: where a named volume that pins its services lives (written by the leader). */
import { type Check, object, string } from './schema.js';

export interface VolumeRecord {
  name: string;
  /** The node where it was made: its services run there, or wait for it. */
  nodeId: string;
  pinnedAt: string;
}

export const checkVolume: Check = object({
  required: { name: string, nodeId: string, pinnedAt: string },
});
