import { constants } from 'node:fs';
import { access, chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { NetworkSettings } from '../mesh/api/network.js';
import type { NodeIdentity } from '../mesh/pki/identity.js';
import { joinHostPort } from '../mesh/transport/address.js';
import { UserError } from '../mesh/user-error.js';
import type { HttpLimits } from '../proxy/http/limits.js';

/**
 * This node's own listeners and data plane settings (`mesh init|join` flags), kept in its
 * cluster file.
 */
export interface DataPlaneSettings {
  /** --metrics-addr: where Prometheus scrapes /metrics; null: nowhere; absent: advertise:9464. */
  metricsAddress?: string | null;
  /** DNS on the node address (--dns-port); 0: none; absent: 53. */
  dnsPort?: number;
  /** --dns-upstream; absent: the host's resolvers. */
  dnsUpstreams?: string[];
  /** The HTTP ingress (--http-port, --https-port); 0: none; absent: 80 and 443. */
  httpPort?: number;
  httpsPort?: number;
  /** --trusted-proxy: peers whose X-Forwarded-* headers the ingress believes. */
  trustedProxies?: string[];
  /** --http-timeout: how long a replica may take to start its answer. */
  httpTimeoutMs?: number;
  /** --udp-timeout: how long a UDP flow keeps its replica without a datagram either way. */
  udpTimeoutMs?: number;
  /** --http-limit KEY=VALUE: what a client of the ingress may hold, and for how long. */
  httpLimits?: Partial<HttpLimits>;
  /** --ingress-workers: processes serving the HTTP ingress; absent: one per core. */
  ingressWorkers?: number;
}

/** Where Prometheus scrapes a node when --metrics-addr is not given: its advertise address. */
export const DEFAULT_METRICS_PORT = 9464;

/** Where /metrics listens: as --metrics-addr said (null: nowhere), else advertise:9464. */
export function metricsAddress(
  settings: Pick<DataPlaneSettings, 'metricsAddress'> & { advertise: string },
): string | null {
  const given = settings.metricsAddress;
  return given === undefined ? joinHostPort(settings.advertise, DEFAULT_METRICS_PORT) : given;
}

/** What a node remembers between runs besides its keys. */
export interface ClusterFile extends DataPlaneSettings {
  /** `mesh init --cert-validity`: how long node certificates last (default 90 days). */
  certValidityMs?: number;
  clusterId: string;
  nodeId: string;
  advertise: string;
  port: number;
  labels: Record<string, string>;
  /** Seeds from the join token, tried again at every start. */
  seeds: string[];
  /** The voters when this node joined: its Raft follows only them until its log names the voters. */
  joinedVoters?: string[];
  /** It joined with a worker token: it never holds the voters' key, nor is seated. */
  workerOnly?: boolean;
  /** Only on a node that holds the CA: the current join secret. */
  joinSecret?: string;
  /** How long a node may be unreachable before its tasks are placed elsewhere (--reschedule-after). */
  rescheduleAfterMs?: number;
  /** Only on the node that created the cluster: the ranges it chose, written to the state once. */
  network?: NetworkSettings;
}

export class DataDirError extends UserError {
  override name = 'DataDirError';
}

/** The agent's control socket, in its data dir: the CLI finds the agent by its data dir alone. */
export function controlSocketPath(dataDir: string): string {
  return join(dataDir, 'control.sock');
}

export function defaultDataDir(): string {
  if (process.env.MESH_DATA_DIR) return process.env.MESH_DATA_DIR;
  return process.getuid?.() === 0 ? '/var/lib/mesh' : join(homedir(), '.mesh');
}

let writes = 0;

/** Writes via a temporary file and a rename, so a crash never leaves half a file behind. */
export async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  // Unique per write: two writes of one file at once must not share a temporary file.
  const temporary = `${path}.tmp-${process.pid}-${++writes}`;
  await writeFile(temporary, text, { mode });
  await rename(temporary, path);
}

/** A file's text, or undefined when there is no such file. */
export async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The agent's directory: keys and certificates (owner-only), cluster settings, known peers. */
export class DataDir {
  constructor(readonly path: string) {}

  get controlSocket(): string {
    return controlSocketPath(this.path);
  }

  /** The process runtime's task state and output. */
  get tasksDir(): string {
    return join(this.path, 'tasks');
  }

  /** Raft's write-ahead log and snapshot. */
  get raftDir(): string {
    return join(this.path, 'raft');
  }

  private file(name: string): string {
    return join(this.path, name);
  }

  async create(): Promise<void> {
    await this.requireWritable();
    await mkdir(join(this.path, 'pki'), { recursive: true, mode: 0o700 });
    await chmod(this.path, 0o700);
    const existing = await this.readClusterIfAny();
    if (existing) {
      throw new DataDirError(
        `${this.path} already holds node ${existing.nodeId} of cluster ${existing.clusterId}; ` +
          `start it with "mesh agent --data-dir ${this.path}", or pick another --data-dir`,
      );
    }
  }

  /**
   * Refuses a data dir the agent cannot write (a read-only mount, wrong permissions): it keeps
   * its Raft log, keys and task state there, and would fail later, at its first write.
   */
  async requireWritable(): Promise<void> {
    try {
      await access(this.path, constants.W_OK);
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      if (code === 'ENOENT') return; // made when first written
      throw new DataDirError(
        `the data dir ${this.path} cannot be written (${code === 'EROFS' ? 'read-only file system' : message}): the agent keeps its Raft log, keys and task state there; make it writable (mount it read-write), or start with another --data-dir`,
      );
    }
  }

  async readCluster(): Promise<ClusterFile> {
    const cluster = await this.readClusterIfAny();
    if (cluster === undefined) {
      throw new DataDirError(
        `${this.path} holds no node yet: create a cluster with "mesh init" or join one with "mesh join TOKEN"`,
      );
    }
    return cluster;
  }

  /** The node this data dir holds, or undefined for a new one. */
  async readClusterIfAny(): Promise<ClusterFile | undefined> {
    const text = await readIfPresent(this.file('cluster.json'));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as ClusterFile;
    } catch (error) {
      throw new DataDirError(
        `${this.file('cluster.json')} is not valid JSON: ${(error as Error).message}`,
      );
    }
  }

  writeCluster(cluster: ClusterFile): Promise<void> {
    return writeAtomic(this.file('cluster.json'), `${JSON.stringify(cluster, null, 2)}\n`, 0o600);
  }

  async writeIdentity(identity: NodeIdentity, caKeyPem?: string): Promise<void> {
    await writeAtomic(this.file('pki/node.key'), identity.keyPem, 0o600);
    await writeAtomic(this.file('pki/node.crt'), identity.certPem, 0o644);
    await writeAtomic(this.file('pki/ca.crt'), identity.caCertPem, 0o644);
    if (identity.chainPem) await writeAtomic(this.file('pki/chain.crt'), identity.chainPem, 0o644);
    else await rm(this.file('pki/chain.crt'), { force: true });
    if (caKeyPem) await writeAtomic(this.file('pki/ca.key'), caKeyPem, 0o600);
  }

  async readIdentity(cluster: ClusterFile): Promise<{ identity: NodeIdentity; caKeyPem?: string }> {
    const read = async (name: string) => {
      const text = await readIfPresent(this.file(name));
      if (text === undefined) throw new DataDirError(`${this.file(name)} is missing`);
      return text;
    };
    // Mid-rotation: the next CA cross-signed by the current one, presented with the certificate.
    const chainPem = await readIfPresent(this.file('pki/chain.crt'));
    const identity: NodeIdentity = {
      clusterId: cluster.clusterId,
      nodeId: cluster.nodeId,
      keyPem: await read('pki/node.key'),
      certPem: await read('pki/node.crt'),
      caCertPem: await read('pki/ca.crt'),
      ...(chainPem && { chainPem }),
    };
    return { identity, caKeyPem: await readIfPresent(this.file('pki/ca.key')) };
  }

  /** Peer addresses last seen alive: a restarted node rejoins through them. */
  async readPeers(): Promise<string[]> {
    const text = await readIfPresent(this.file('peers.json'));
    if (text === undefined) return [];
    let peers: unknown;
    try {
      peers = JSON.parse(text);
    } catch (error) {
      throw new DataDirError(
        `${this.file('peers.json')} is not valid JSON: ${(error as Error).message}`,
      );
    }
    return Array.isArray(peers) ? peers.filter((p): p is string => typeof p === 'string') : [];
  }

  writePeers(peers: string[]): Promise<void> {
    return writeAtomic(this.file('peers.json'), `${JSON.stringify(peers)}\n`, 0o600);
  }
}
