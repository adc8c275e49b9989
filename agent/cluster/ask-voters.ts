import type { Logger } from 'pino';
import type { RaftNode } from '../../mesh/raft/node.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';
import { UnavailableError } from '../errors.js';
import type { Keyring } from '../secrets/keyring.js';
import type { StateAccess } from './state-access.js';

/**
 * Asks the voters in turn (over mTLS, named by their certificates) until one answers: what only
 * a voter can do (sign, open a sealed value, make a token). Refuses with every voter's reason.
 */
export async function askVoters<T>(
  from: { raft: RaftNode; state: ClusterState; transport: Transport },
  type: string,
  body: unknown,
  what: string,
): Promise<T> {
  const reasons: string[] = [];
  for (const voter of from.raft.membership.voters) {
    const address = from.state.get('nodes', voter)?.value.address;
    if (!address) continue;
    try {
      return (await from.transport.request({ address, nodeId: voter }, type, body)) as T;
    } catch (error) {
      reasons.push(`${voter}: ${(error as Error).message}`);
    }
  }
  throw new UnavailableError(`no voter ${what} (${reasons.join('; ') || 'none known'})`);
}

/**
 * What a store of sealed values needs (ingress certificates' keys, registry logins): the state
 * and its writes, the keys to seal with, and the voters to ask when this node may not open them.
 */
export interface SealedStoreParts {
  nodeId: string;
  access: StateAccess;
  keyring: Keyring;
  raft: RaftNode;
  transport: Transport;
  log: Logger;
}
