import type { Logger } from 'pino';
import type { Membership } from '../../mesh/membership/runtime.js';
import type { DataDir } from '../datadir.js';

// Peer addresses are saved at most this often.
const SAVE_DELAY_MS = 2000;

/** Remembers the members' addresses in the data dir, for rejoining after a restart. */
export class PeerCache {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dir: DataDir,
    private readonly membership: Membership,
    private readonly self: string,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.membership.on('change', () => this.saveSoon());
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private saveSoon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const peers = this.membership
        .members()
        // Dead ones too: after a crash of its own, this node rejoins through whoever is back.
        .filter((m) => m.status !== 'left' && m.id !== this.self)
        .map((m) => m.address);
      this.dir.writePeers(peers).catch((error: Error) => {
        this.log.warn({ reason: error.message }, 'could not save the peer cache');
      });
    }, SAVE_DELAY_MS);
  }
}
