/** Nodes: what the leader records of each member, and what operators set on it. */
import {
  amount,
  boolean,
  type Check,
  integer,
  listOf,
  mapOf,
  object,
  oneOf,
  string,
} from './schema.js';

/** A node as the replicated state records it, for the scheduler and for `mesh node ls`. */
export interface NodeRecord {
  address: string;
  hostname: string;
  /**
   * Joining: the join service issued its certificate; gossip has not seen it yet.
   * Suspect: some node failed to reach it; the scheduler counts that as down, after a grace.
   * Removed: `mesh node rm`; its certificate is refused everywhere and the record stays so.
   */
  status: 'joining' | 'ready' | 'suspect' | 'down' | 'left' | 'removed';
  /** When the leader saw the status begin (ms since the epoch). */
  since: number;
  /** The agent's own labels (its --label flags). */
  labels: Record<string, string>;
  capacity: { cpus: number; memoryBytes: number };
  version: string;
  /** The serial (normalized) of the certificate the cluster issued it last. */
  serial: string;
  /**
   * Every certificate the cluster issued it that is still honoured: a connection is admitted only
   * with one of these serials, not retired. Absent on a record from before this was kept: its
   * `serial` alone is honoured then.
   */
  certificates?: IssuedCertificate[];
  /**
   * It joined with a worker token (`mesh token --worker`): it is never seated as a voter and never
   * holds the voters' key, whatever the cluster's size.
   */
  workerOnly?: boolean;
  /**
   * The ID of the voters' key a voter handed it while autolock was on: it is not handed again (a
   * copy of the node's data dir must open its own copy with the unlock key).
   */
  votersKeyGiven?: string;
  /** The task runtimes it offers. */
  runtimes: string[];
  /** `mesh node drain|activate`: a drained node runs nothing. */
  availability: 'active' | 'drain';
  /** `mesh node label`: set through the cluster, they win over the agent's own. */
  userLabels: Record<string, string>;
  /** Its operating system and machine (linux, x86_64), for node.platform constraints. */
  platform?: { os: string; arch: string };
  /** Published ports it cannot serve (taken by something else there), with why: shown by `mesh ls`. */
  unserved?: UnservedPort[];
  /**
   * The published ports its data plane has taken up, served or not (then in unserved): a deploy
   * waits for each node's word on the ports it publishes.
   */
  published?: number[];
  /** Its HTTP ingress: listening, or off (no HTTP port); absent until it listens (a deploy waits). */
  ingress?: IngressState;
  /** The ingress ports (HTTP, HTTPS) it could not take, with why: a deploy warns of them. */
  ingressUnserved?: UnservedPort[];
  /**
   * It said it stops to start again, its tasks left running (SIGHUP, `systemctl reload`): while it
   * is down, its tasks stay for the restart grace rather than the reschedule grace.
   */
  restarting?: boolean;
}

/** A certificate the cluster issued to a node (join, renewal, rejoin), as the node record keeps it. */
export interface IssuedCertificate {
  serial: string;
  /** When it expires (ms since the epoch): past that no handshake accepts it, and it is dropped. */
  notAfter: number;
  /** From when it is refused (ms since the epoch): set when a newer one is issued to the node. */
  retireAt?: number;
}

/** A record from before certificates were kept honours its one serial until it is renewed. */
const LEGACY_NOT_AFTER = Number.MAX_SAFE_INTEGER;

/** The certificates honoured for a node, by its record. */
export function issuedCertificates(
  record: Pick<NodeRecord, 'serial' | 'certificates'>,
): IssuedCertificate[] {
  if (record.certificates) return record.certificates;
  return record.serial ? [{ serial: record.serial, notAfter: LEGACY_NOT_AFTER }] : [];
}

/**
 * The record with a newly issued certificate: it becomes the node's serial, and every one issued
 * before is retired at `retireOthersAt` (sooner, if it already was); expired and retired ones go.
 */
export function withIssued(
  record: NodeRecord,
  issued: { serial: string; notAfter: number },
  retireOthersAt: number,
  now: number,
): NodeRecord {
  const kept = issuedCertificates(record)
    .filter((c) => c.serial !== issued.serial && c.notAfter > now && (c.retireAt ?? now + 1) > now)
    .map((c) => ({ ...c, retireAt: Math.min(c.retireAt ?? retireOthersAt, retireOthersAt) }));
  return { ...record, serial: issued.serial, certificates: [...kept, issued] };
}

/**
 * Why a connection with this certificate is not admitted, by the node's record (undefined: it
 * is): a node the cluster never recorded, one removed, a serial never issued to it or retired.
 */
export function certificateRefusal(
  nodeId: string,
  serial: string,
  record: NodeRecord | undefined,
  now: number,
): string | undefined {
  if (!record) return `node ${nodeId} is not a member of this cluster: no join recorded it`;
  if (record.status === 'removed')
    return `certificate ${serial} of node ${nodeId} is revoked: the node was removed (mesh node rm)`;
  const issued = issuedCertificates(record).find((c) => c.serial === serial);
  if (!issued)
    return `certificate ${serial} was never issued to node ${nodeId} by this cluster (not recorded)`;
  if (issued.retireAt !== undefined && issued.retireAt <= now)
    return `certificate ${serial} of node ${nodeId} is retired: a newer one was issued to it`;
  return undefined;
}

export interface UnservedPort {
  port: number;
  reason: string;
}

/**
 * The record of a node the join service admitted, before gossip has seen it: members accept its
 * certificate from then on, and the leader fills in the rest once it shows up.
 */
export function joiningNode(
  serial: string,
  notAfter: number,
  since: number,
  workerOnly = false,
): NodeRecord {
  return {
    ...(workerOnly && { workerOnly: true }),
    address: '',
    hostname: '',
    status: 'joining',
    since,
    labels: {},
    capacity: { cpus: 0, memoryBytes: 0 },
    version: '',
    serial,
    certificates: [{ serial, notAfter }],
    runtimes: [],
    availability: 'active',
    userLabels: {},
  };
}

/** The labels placement constraints see: what an operator set wins over the agent's own. */
export function nodeLabels(
  node: Pick<NodeRecord, 'labels' | 'userLabels'>,
): Record<string, string> {
  return { ...node.labels, ...node.userLabels };
}

const resources = object({ required: { cpus: amount, memoryBytes: amount } });

/** A node's unserved ports, as it reports them (gossip checks them before the record does). */
export const checkUnserved: Check = listOf(
  object({ required: { port: integer(1), reason: string } }),
);

/** Whether a node's HTTP ingress listens: its workers start with its first route. */
export const INGRESS_STATES = ['listening', 'off'] as const;
export type IngressState = (typeof INGRESS_STATES)[number];

/** A node's published ports, as it reports them. */
export const checkPublished: Check = listOf(integer(1));

/** nodes/<id>: the shape every replica checks before it stores one. */
export const checkNode: Check = object({
  required: {
    address: string,
    hostname: string,
    status: oneOf('joining', 'ready', 'suspect', 'down', 'left', 'removed'),
    since: amount,
    labels: mapOf(string),
    capacity: resources,
    version: string,
    serial: string,
    runtimes: listOf(string),
    availability: oneOf('active', 'drain'),
    userLabels: mapOf(string),
  },
  optional: {
    platform: object({ required: { os: string, arch: string } }),
    unserved: checkUnserved,
    published: checkPublished,
    ingress: oneOf(...INGRESS_STATES),
    ingressUnserved: checkUnserved,
    certificates: listOf(
      object({ required: { serial: string, notAfter: amount }, optional: { retireAt: amount } }),
    ),
    workerOnly: boolean,
    votersKeyGiven: string,
    restarting: boolean,
  },
});
