import { once } from 'node:events';
import { createServer } from 'node:net';
import type { NetworkSettings } from '../../mesh/api/network.js';
import { joinCluster } from '../../mesh/join/client.js';
import { createLogger, type LogFormat, type Logger } from '../../mesh/log.js';
import { ClusterCA } from '../../mesh/pki/ca.js';
import { describeCertificate } from '../../mesh/pki/certificate.js';
import { type NodeIdentity, newClusterId, newNodeId } from '../../mesh/pki/identity.js';
import { generateKeyPair } from '../../mesh/pki/keys.js';
import { decodeJoinToken, type JoinToken, newJoinSecret } from '../../mesh/pki/token.js';
import { RaftStorage } from '../../mesh/raft/storage.js';
import { newKey } from '../../mesh/secrets/sealing.js';
import { splitHostPort } from '../../mesh/transport/address.js';
import { UserError } from '../../mesh/user-error.js';
import { type ClusterFile, DataDir, type DataPlaneSettings, metricsAddress } from '../datadir.js';
import { VotersKeyFile } from '../secrets/key-file.js';
import { type Restore, restoredStart } from './restore.js';

export interface AgentOptions extends DataPlaneSettings {
  dataDir: string;
  /** The address other nodes reach this one at; the agent also listens and dials from it. */
  advertise: string;
  port: number;
  labels: Record<string, string>;
  logLevel?: string;
  logFormat?: LogFormat;
  /** `mesh init --cert-validity`: how long node certificates last. */
  certValidityMs?: number;
  /** `mesh agent --force-new-cluster`: quorum is lost for good; this voter goes on alone. */
  forceNewCluster?: boolean;
  rescheduleAfterMs?: number;
  /** `mesh init` only: the cluster's service and bridge ranges. */
  network?: NetworkSettings;
  /** `mesh init --restore FILE`: the cluster starts from a backup. */
  restore?: Restore;
  /** `mesh init --autolock`: every copy of the voters' key on a disk is wrapped (see key-file.ts). */
  autolock?: boolean;
}

export class AgentError extends UserError {
  override name = 'AgentError';
}

/** What an agent starts from: its data dir, settings, identity, and whom to meet first. */
export interface Provisioned {
  dir: DataDir;
  cluster: ClusterFile;
  identity: NodeIdentity;
  /** Only on the node that created the cluster. */
  ca: ClusterCA | undefined;
  log: Logger;
  /** Addresses of members to join through. */
  seeds: string[];
  /** `mesh join` with the data dir of a node the cluster knows: it came back as itself. */
  returned?: boolean;
  /** `mesh init --autolock`: the unlock key, in memory only, until an operator asks for it. */
  unlockKey?: Buffer;
}

/** Creates a cluster: its CA, this node's identity, a join secret, and Raft with one voter. */
export async function createCluster(options: AgentOptions): Promise<Provisioned> {
  const dir = new DataDir(options.dataDir);
  await dir.create();
  await checkListenable(options);
  const restored = options.restore && restoredStart(options.restore);
  const clusterId = restored?.kept?.clusterId ?? newClusterId();
  const ca = restored?.kept?.ca ?? (await ClusterCA.create(clusterId));
  const keys = await generateKeyPair();
  const nodeId = newNodeId();
  const validDays = options.certValidityMs && options.certValidityMs / 86_400_000;
  const issued = ca.issue({ nodeId, publicKeyPem: keys.publicKeyPem, validDays });
  const identity = {
    clusterId,
    nodeId,
    keyPem: keys.privateKeyPem,
    certPem: issued.certPem,
    caCertPem: ca.certPem,
  };
  const cluster: ClusterFile = {
    clusterId,
    nodeId,
    advertise: options.advertise,
    port: options.port,
    labels: options.labels,
    seeds: [],
    // A kept CA comes with its join secret, both in the restored state.
    ...(restored?.kept ? {} : { joinSecret: newJoinSecret() }),
    rescheduleAfterMs: options.rescheduleAfterMs,
    ...nodeSettings(options),
    network: restored?.network ?? options.network,
    ...(options.certValidityMs ? { certValidityMs: options.certValidityMs } : {}),
  };
  await dir.writeIdentity(identity, restored?.kept ? undefined : ca.exportKeyPem());
  const unlockKey = options.autolock ? newKey() : undefined;
  if (options.restore)
    await new VotersKeyFile(dir.path, unlockKey).write(options.restore.votersKey);
  const log = agentLogger(nodeId, options);
  // The first node is the cluster's only voter until the leader (itself) seats others.
  const bootstrap = { voters: [nodeId], learners: [] };
  const storage = RaftStorage.open(dir.raftDir, bootstrap, log);
  storage.saveSnapshot({
    index: restored?.snapshot.index ?? 0,
    term: 0,
    membership: bootstrap,
    data: restored?.snapshot.data ?? null,
  });
  storage.close();
  await dir.writeCluster(cluster);
  log.info(
    { clusterId, dataDir: dir.path, ...(restored && { restoredAt: restored.snapshot.index }) },
    restored ? 'cluster created from a backup' : 'cluster created',
  );
  return {
    dir,
    cluster,
    identity,
    ca: restored?.kept ? undefined : ca,
    log,
    seeds: [],
    ...(unlockKey && { unlockKey }),
  };
}

/** Joins the cluster a token names: pins its CA, proves the secret, receives a certificate. */
export async function joinWithToken(
  tokenText: string,
  options: AgentOptions,
): Promise<Provisioned> {
  const token = decodeJoinToken(tokenText);
  const dir = new DataDir(options.dataDir);
  const existing = await dir.readClusterIfAny();
  if (existing?.clusterId === token.clusterId) return comeBack(token, dir, existing, options);
  await dir.create();
  await checkListenable(options);
  const bootLog = agentLogger('(joining)', options);
  const { identity, voters, workerOnly } = await joinCluster(token, {
    log: bootLog,
    bindAddress: options.advertise,
  });
  const cluster: ClusterFile = {
    clusterId: identity.clusterId,
    nodeId: identity.nodeId,
    advertise: options.advertise,
    port: options.port,
    labels: options.labels,
    seeds: token.seeds,
    joinedVoters: voters,
    ...(workerOnly && { workerOnly: true }),
    rescheduleAfterMs: options.rescheduleAfterMs,
    ...nodeSettings(options),
  };
  await dir.writeIdentity(identity);
  await dir.writeCluster(cluster);
  const log = agentLogger(identity.nodeId, options);
  return { dir, cluster, identity, ca: undefined, log, seeds: token.seeds };
}

/**
 * `mesh join` on the data dir of a member (its certificate expired while it was off, or the CA
 * was rotated meanwhile): it proves the key of its old certificate and gets a new one for the
 * same node ID, so it keeps its labels, its Raft log and its tasks. Its settings stay as they
 * were; the token only brings trust and seeds.
 */
async function comeBack(
  token: JoinToken,
  dir: DataDir,
  cluster: ClusterFile,
  options: AgentOptions,
): Promise<Provisioned> {
  await checkListenable(cluster);
  const { identity: old } = await dir.readIdentity(cluster);
  const log = agentLogger(cluster.nodeId, options);
  const { identity, voters } = await joinCluster(token, {
    log,
    bindAddress: cluster.advertise,
    returning: old,
  });
  cluster.joinedVoters = voters;
  await dir.writeIdentity(identity);
  cluster.seeds = [...new Set([...token.seeds, ...cluster.seeds])];
  await dir.writeCluster(cluster);
  log.info(
    { validTo: describeCertificate(identity.certPem).notAfter },
    'came back with a new certificate, as the same node',
  );
  const peers = await readPeers(dir, log);
  return {
    dir,
    cluster,
    identity,
    ca: undefined,
    log,
    seeds: [...new Set([...token.seeds, ...peers])],
    returned: true,
  };
}

/** Reads a data dir written before: same identity, rejoining through known peers and seeds. */
/**
 * The node's Raft storage, opened first: a damaged log refuses to start before this node answers
 * anyone. With --force-new-cluster (quorum lost for good), this surviving voter becomes the only
 * one, keeping the state it holds.
 */
export function openRaftStorage(provisioned: Provisioned, forceNewCluster: boolean): RaftStorage {
  const { dir, cluster, identity, log } = provisioned;
  const storage = RaftStorage.open(
    dir.raftDir,
    { voters: cluster.joinedVoters ?? [], learners: [] },
    log,
  );
  if (!forceNewCluster) return storage;
  const before = storage.voters;
  if (!before.includes(identity.nodeId))
    throw new AgentError(
      `--force-new-cluster: node ${identity.nodeId} was not a voter (voters: ${before.join(', ')}); run it on a surviving voter`,
    );
  storage.forceSoleVoter(identity.nodeId);
  log.warn(
    { formerVoters: before },
    'forced a new cluster: this node is the only voter, with the state it holds',
  );
  return storage;
}

export async function reopen(
  options: Pick<AgentOptions, 'dataDir' | 'logLevel' | 'logFormat'>,
): Promise<Provisioned> {
  const dir = new DataDir(options.dataDir);
  await dir.requireWritable();
  const cluster = await dir.readCluster();
  const { identity, caKeyPem } = await dir.readIdentity(cluster);
  const ca = caKeyPem ? ClusterCA.load(cluster.clusterId, identity.caCertPem, caKeyPem) : undefined;
  const log = agentLogger(cluster.nodeId, options);
  const peers = await readPeers(dir, log);
  return { dir, cluster, identity, ca, log, seeds: [...new Set([...peers, ...cluster.seeds])] };
}

function readPeers(dir: DataDir, log: Logger): Promise<string[]> {
  return dir.readPeers().catch((error: Error) => {
    log.warn({ reason: error.message }, 'peer cache unreadable; rejoining through the seeds only');
    return [];
  });
}

/** This node's own data plane settings, kept in its cluster file. */
function nodeSettings(options: AgentOptions): DataPlaneSettings {
  return {
    metricsAddress: options.metricsAddress,
    dnsPort: options.dnsPort,
    dnsUpstreams: options.dnsUpstreams,
    httpPort: options.httpPort,
    httpsPort: options.httpsPort,
    trustedProxies: options.trustedProxies,
    httpTimeoutMs: options.httpTimeoutMs,
    udpTimeoutMs: options.udpTimeoutMs,
    httpLimits: options.httpLimits,
    ingressWorkers: options.ingressWorkers,
  };
}

/**
 * Why we cannot listen, in words a user can act on; `flag` is the one that chose the address
 * (the cluster port's comes from --advertise and --port).
 */
export function listenError(error: Error, host: string, port: number, flag?: string): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new AgentError(
      `port ${port} on ${host} is taken (another mesh agent?); choose one with ${flag ?? '--port'}`,
    );
  }
  if (code === 'EADDRNOTAVAIL') {
    return new AgentError(
      `${host} is not an address of this machine; check ${flag ?? '--advertise'}`,
    );
  }
  return error;
}

/** Fails before anything is written or issued, so a retry with other flags starts clean. */
async function checkListenable(
  settings: Pick<ClusterFile, 'advertise' | 'port' | 'metricsAddress'>,
): Promise<void> {
  const metrics = metricsAddress(settings);
  const wanted = [
    { host: settings.advertise, port: settings.port, flag: undefined },
    ...(metrics ? [{ ...splitHostPort(metrics), flag: '--metrics-addr' }] : []),
  ];
  for (const { host, port, flag } of wanted) {
    const probe = createServer();
    try {
      probe.listen(port, host);
      await once(probe, 'listening');
    } catch (error) {
      throw listenError(error as NodeJS.ErrnoException, host, port, flag);
    }
    probe.close();
    await once(probe, 'close');
  }
}

function agentLogger(
  nodeId: string,
  options: { logLevel?: string; logFormat?: LogFormat },
): Logger {
  return createLogger({ nodeId, level: options.logLevel, format: options.logFormat });
}
