/** Nodes: what the leader records of each member, and what operators set on it. */
import { amount, type Check, integer, listOf, mapOf, object, oneOf, string } from './schema.js';

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
  /** Its certificate's serial (normalized), revoked when the node is removed. */
  serial: string;
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
}

export interface UnservedPort {
  port: number;
  reason: string;
}

/**
 * The record of a node the join service admitted, before gossip has seen it: members accept its
 * certificate from then on, and the leader fills in the rest once it shows up.
 */
export function joiningNode(serial: string, since: number): NodeRecord {
  return {
    address: '',
    hostname: '',
    status: 'joining',
    since,
    labels: {},
    capacity: { cpus: 0, memoryBytes: 0 },
    version: '',
    serial,
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
  },
});
