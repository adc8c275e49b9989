/**
 * SWIM timing and fan-out. The defaults are memberlist's LAN defaults (hashicorp/memberlist
 * DefaultLANConfig), which are tuned for convergence on a LAN at modest bandwidth.
 */
export interface SwimConfig {
  /** Each node probes one member per interval. */
  probeIntervalMs: number;
  /** No direct ack within this: ask `indirectChecks` members to probe for us. */
  probeTimeoutMs: number;
  indirectChecks: number;
  /** Suspicion lasts suspicionMult * max(1, log10 N) probe intervals at least ... */
  suspicionMult: number;
  /** ... and at most this many times that, when no other member confirms the suspicion. */
  suspicionMaxTimeoutMult: number;
  /** Each update is piggybacked retransmitMult * ceil(log10(N + 1)) times. */
  retransmitMult: number;
  gossipIntervalMs: number;
  gossipNodes: number;
  /** Dead and left members still receive gossip this long, so a live one can refute. */
  gossipToTheDeadMs: number;
  /** Full state exchange with one random member; scaled up above 32 nodes. */
  pushPullIntervalMs: number;
  /** Lifeguard: a node that misses acks stretches its own timeouts up to this factor. */
  awarenessMaxMultiplier: number;
  /** Updates per message. memberlist fits 1400-byte UDP packets; our frames ride TCP, so more fit. */
  maxPiggyback: number;
  /** Join push-pull is retried this often until some seed answers. */
  joinRetryMs: number;
  /**
   * One more push-pull, with a random member, this long after joining: gossip with bounded
   * retransmits can miss a node during a join storm, and a full sync repairs that at once
   * rather than at the next periodic push-pull, minutes away in large clusters.
   */
  joinSyncDelayMs: number;
  /**
   * Push-pull with one random dead member this often (Serf's reconnect): after a partition longer
   * than gossipToTheDeadMs nothing else would ever contact the other side again.
   */
  reconnectIntervalMs: number;
}

export const LAN_DEFAULTS: Readonly<SwimConfig> = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  gossipToTheDeadMs: 30_000,
  pushPullIntervalMs: 30_000,
  awarenessMaxMultiplier: 8,
  maxPiggyback: 64,
  joinRetryMs: 2000,
  joinSyncDelayMs: 3000,
  reconnectIntervalMs: 30_000,
};

export function suspicionMinMs(config: SwimConfig, n: number): number {
  return config.suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * config.probeIntervalMs;
}

export function retransmitLimit(config: SwimConfig, n: number): number {
  return config.retransmitMult * Math.ceil(Math.log10(n + 1));
}

const PUSH_PULL_SCALE_THRESHOLD = 32;

/** Full-state syncs slow down as the cluster grows so they do not dominate the traffic. */
export function pushPullIntervalMs(config: SwimConfig, n: number): number {
  if (n <= PUSH_PULL_SCALE_THRESHOLD) return config.pushPullIntervalMs;
  const multiplier = Math.ceil(Math.log2(n) - Math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1;
  return multiplier * config.pushPullIntervalMs;
}
