import {
  checkPublished,
  checkUnserved,
  INGRESS_STATES,
  type IngressState,
  type UnservedPort,
} from '../api/nodes.js';

export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left';

/** What a node gossips about itself: enough to route to it and to schedule onto it. */
export interface NodeMeta {
  /** Addresses other nodes and clients use: transport (peer), DNS and ingress. */
  addresses: { peer: string; dns?: string; ingress?: string };
  capacity: { cpus: number; memoryBytes: number };
  labels: Record<string, string>;
  raftRole: string;
  version: string;
  hostname?: string;
  /** The serial of the certificate the node presents (honoured only if the cluster recorded it). */
  serial?: string;
  /** When its certificate expires (ISO 8601): `mesh node ls` shows it. */
  certExpires?: string;
  /** The pin of the CA that issued its certificate: a CA rotation ends once every live node's is the new CA. */
  caPin?: string;
  /** Task runtimes it offers (docker, process). */
  runtimes?: string[];
  /** Its operating system and machine, as Swarm names them (linux, x86_64). */
  platform?: Platform;
  /** Published ports it cannot serve, and why. */
  unserved?: UnservedPort[];
  /** The published ports its data plane has taken up, served or not. */
  published?: number[];
  /** Its HTTP ingress: listening, or off (no HTTP port); absent until its workers listen. */
  ingress?: IngressState;
  /** The ingress ports (HTTP, HTTPS) it could not take, with why. */
  ingressUnserved?: UnservedPort[];
  /** The ID of the voters' key it holds: the leader seats a learner only once it says so. */
  votersKey?: string;
  /**
   * It is stopping to start again (SIGHUP), its tasks left running: the cluster keeps them on it
   * for a while longer than a node that died.
   */
  restarting?: boolean;
}

export interface Platform {
  os: string;
  arch: string;
}

/** A claim about one member; the higher incarnation wins, then the worse status. */
export type Update =
  | { status: 'alive'; id: string; inc: number; addr: string; meta: NodeMeta }
  | { status: 'suspect' | 'dead' | 'left'; id: string; inc: number; from: string };

interface Base {
  /** The sender's listening address, so replies can reach a sender we do not know yet. */
  addr: string;
}

export type SwimMessage = Base &
  (
    | { type: 'ping'; seq: number; target: string; updates: Update[] }
    | { type: 'ack'; seq: number; updates: Update[] }
    | { type: 'nack'; seq: number; updates: Update[] }
    | { type: 'ping-req'; seq: number; target: string; targetAddr: string; updates: Update[] }
    | { type: 'gossip'; updates: Update[] }
    | { type: 'push'; join: boolean; state: Update[] }
    | { type: 'pull'; state: Update[] }
  );

export class SwimMessageError extends Error {
  override name = 'SwimMessageError';
}

const STATUSES = new Set(['alive', 'suspect', 'dead', 'left']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkMeta(meta: unknown): void {
  if (!isRecord(meta) || !isRecord(meta.addresses) || typeof meta.addresses.peer !== 'string') {
    throw new SwimMessageError('alive update without meta.addresses.peer');
  }
  if (!isRecord(meta.capacity) || !isRecord(meta.labels)) {
    throw new SwimMessageError('alive update without meta.capacity and meta.labels');
  }
  const unserved =
    meta.unserved === undefined ? undefined : checkUnserved(meta.unserved, 'meta.unserved');
  if (unserved) throw new SwimMessageError(`alive update: ${unserved}`);
  const ingressUnserved =
    meta.ingressUnserved === undefined
      ? undefined
      : checkUnserved(meta.ingressUnserved, 'meta.ingressUnserved');
  if (ingressUnserved) throw new SwimMessageError(`alive update: ${ingressUnserved}`);
  const published =
    meta.published === undefined ? undefined : checkPublished(meta.published, 'meta.published');
  if (published) throw new SwimMessageError(`alive update: ${published}`);
  if (meta.ingress !== undefined && !INGRESS_STATES.includes(meta.ingress as IngressState))
    throw new SwimMessageError(`alive update: meta.ingress is one of ${INGRESS_STATES.join(', ')}`);
  if (meta.restarting !== undefined && meta.restarting !== true)
    throw new SwimMessageError('alive update: meta.restarting is true when present');
}

function checkUpdates(value: unknown, field: string): void {
  if (!Array.isArray(value)) throw new SwimMessageError(`${field} must be a list`);
  for (const update of value) {
    if (!isRecord(update) || !STATUSES.has(update.status as string)) {
      throw new SwimMessageError(`${field} holds an update of unknown status`);
    }
    if (typeof update.id !== 'string' || !Number.isSafeInteger(update.inc)) {
      throw new SwimMessageError(`${field} holds an update without id and incarnation`);
    }
    if (update.status === 'alive') {
      if (typeof update.addr !== 'string') throw new SwimMessageError('alive update without addr');
      checkMeta(update.meta);
    } else if (typeof update.from !== 'string') {
      throw new SwimMessageError(`${String(update.status)} update without from`);
    }
  }
}

/** Checks a message that arrived from the network; members are trusted, their bugs are not. */
export function parseSwimMessage(body: unknown): SwimMessage {
  if (!isRecord(body) || typeof body.type !== 'string' || typeof body.addr !== 'string') {
    throw new SwimMessageError('not a SWIM message');
  }
  const seqOk = Number.isSafeInteger(body.seq);
  switch (body.type) {
    case 'ping':
    case 'ping-req':
      if (!seqOk || typeof body.target !== 'string')
        throw new SwimMessageError(`${body.type} without seq and target`);
      if (body.type === 'ping-req' && typeof body.targetAddr !== 'string') {
        throw new SwimMessageError('ping-req without targetAddr');
      }
      checkUpdates(body.updates, 'updates');
      break;
    case 'ack':
    case 'nack':
      if (!seqOk) throw new SwimMessageError(`${body.type} without seq`);
      checkUpdates(body.updates, 'updates');
      break;
    case 'gossip':
      checkUpdates(body.updates, 'updates');
      break;
    case 'push':
    case 'pull':
      checkUpdates(body.state, 'state');
      break;
    default:
      throw new SwimMessageError(`unknown SWIM message type "${body.type}"`);
  }
  return body as unknown as SwimMessage;
}
