import type { Logger } from 'pino';
import type { ClusterCA } from '../mesh/pki/ca.js';
import { encodeJoinToken, newJoinSecret } from '../mesh/pki/token.js';
import type { ClusterFile, DataDir } from './datadir.js';
import { NotFoundError } from './errors.js';

const NOT_CA = 'this node does not hold the cluster CA; ask the node that ran "mesh init"';

/** `mesh token`: tokens for joining through this node, on the node that holds the CA. */
export class JoinTokens {
  constructor(
    private readonly dir: DataDir,
    private readonly cluster: ClusterFile,
    private readonly ca: ClusterCA | undefined,
    private readonly address: string,
    private readonly log: Logger,
  ) {}

  /** The current token, if this node holds the CA. */
  current(): string | undefined {
    if (!this.ca || !this.cluster.joinSecret) return undefined;
    return encodeJoinToken({
      clusterId: this.cluster.clusterId,
      seeds: [this.address],
      caPin: this.ca.pin,
      secret: this.cluster.joinSecret,
    });
  }

  /** The current token, or a refusal saying where to get one. */
  require(): string {
    const token = this.current();
    if (!token) throw new NotFoundError(NOT_CA);
    return token;
  }

  /** A new join secret: tokens printed before stop admitting anyone. */
  async rotate(): Promise<string> {
    if (!this.ca) throw new NotFoundError(NOT_CA);
    this.cluster.joinSecret = newJoinSecret();
    await this.dir.writeCluster(this.cluster);
    this.log.info('join secret rotated: earlier tokens no longer admit anyone');
    return this.require();
  }
}
