import { randomBytes, verify, X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { LimitedLog } from '../limited-log.js';
import type { ClusterCA } from '../pki/ca.js';
import { describeCertificate, ROLE_NODE } from '../pki/certificate.js';
import { newNodeId } from '../pki/identity.js';
import { splitHostPort } from '../transport/address.js';
import { Channel, type Handler } from '../transport/channel.js';
import { type AnonymousRoute, refuseUpgrade } from '../transport/listener.js';
import {
  type CertificateResponse,
  type ChallengeResponse,
  JOIN_CERTIFICATE,
  JOIN_CHALLENGE,
  JOIN_LIMITS,
  type RejoinProof,
} from './messages.js';
import { joinProof, proofMatches, rejoinPayload } from './proof.js';
import { RateLimiter, type RateLimitOptions } from './ratelimit.js';

export interface IssuedNode {
  nodeId: string;
  serial: string;
  /** When the certificate expires (ms since the epoch). */
  notAfter: number;
  /** Its token was a worker token. */
  workerOnly: boolean;
  /** host:port the joiner came from. */
  remote: string;
}

/** A token proves one of these: a manager token's (default), or a worker token's. */
export interface JoinSecrets {
  manager: string;
  /** Absent until a worker token was first asked for. */
  worker?: string;
}

export interface JoinServiceOptions {
  /** The CA that signs joiners' certificates (a node that cannot sign refuses, saying why). */
  ca: () => Promise<ClusterCA>;
  /** The current join secrets; rotating one invalidates every token of its kind made before. */
  secrets: () => Promise<JoinSecrets>;
  /** How long a joiner's certificate lasts (days); undefined: the default. */
  validDays?: () => number | undefined;
  log: Logger;
  rateLimit?: RateLimitOptions;
  /** A join session must finish within this; the socket is then dropped. */
  sessionTimeoutMs?: number;
  /**
   * Records the new node in the cluster before its certificate is handed over: members accept
   * a certificate only for a node the cluster recorded. A failure fails the join, with its reason.
   */
  register: (node: IssuedNode) => Promise<void>;
  /**
   * A returning node (see `rejoin` in the request) gets its own ID back only if the cluster still
   * counts it as a member; this refuses, saying why, when it does not (unknown, or removed), and
   * records its new certificate before it is handed over.
   */
  readmit: (node: IssuedNode) => Promise<void>;
  /** CA certificates whose node certificates may come back: the current CA and retired ones. */
  issuers?: () => string[];
  /** The Raft voters now, told to the joiner (see CertificateResponse). */
  voters: () => string[];
}

const DEFAULT_RATE_LIMIT = { burst: 10, refillPerSecond: 1 / 6 };

interface ReceivedRequest {
  clusterId: string;
  csrPem: string;
  proof: Uint8Array;
  rejoin?: { certPem: string; signature: Uint8Array };
}

function isCertificateRequest(body: unknown): body is ReceivedRequest {
  const b = body as Record<string, unknown> | null;
  const rejoin = (b?.rejoin ?? undefined) as Record<string, unknown> | undefined;
  return (
    typeof b === 'object' &&
    b !== null &&
    typeof b.clusterId === 'string' &&
    typeof b.csrPem === 'string' &&
    b.proof instanceof Uint8Array &&
    (rejoin === undefined ||
      (typeof rejoin.certPem === 'string' && rejoin.signature instanceof Uint8Array))
  );
}

/**
 * The node a rejoin proof names, once it is shown to be a node certificate of this cluster, signed
 * by one of its CAs (expired or not: that is why it is back), whose key signed this nonce and CSR.
 */
export function returningNode(
  rejoin: Pick<RejoinProof, 'certPem'> & { signature: Uint8Array },
  clusterId: string,
  issuers: string[],
  nonce: Buffer,
  csrPem: string,
): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(rejoin.certPem);
  } catch (error) {
    throw new Error(`the returning node's certificate does not parse: ${(error as Error).message}`);
  }
  const facts = describeCertificate(rejoin.certPem);
  if (facts.clusterId !== clusterId || facts.role !== ROLE_NODE)
    throw new Error(`the returning certificate is not a node certificate of cluster ${clusterId}`);
  if (!issuers.some((pem) => cert.verify(new X509Certificate(pem).publicKey)))
    throw new Error(`the certificate of node ${facts.nodeId} was not issued by this cluster's CA`);
  if (!verify('sha256', rejoinPayload(nonce, csrPem), cert.publicKey, rejoin.signature))
    throw new Error(`node ${facts.nodeId}: the rejoin signature is not made with its key`);
  return facts.nodeId;
}

/**
 * The seed side of joining: a node that holds the cluster CA answers joiners who prove the secret
 * with a certificate for a node ID it chooses, so no joiner can claim an existing identity; only a
 * returning node that signs with the key of its old certificate gets its own ID back.
 */
export class JoinService implements AnonymousRoute {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: JOIN_LIMITS.maxFrameBytes,
    perMessageDeflate: false,
  });
  private readonly limiter: RateLimiter;
  /** Refusals and what joiners' frames cause, a line a minute per source and kind. */
  private readonly warnings: LimitedLog;

  constructor(private readonly options: JoinServiceOptions) {
    this.limiter = new RateLimiter(options.rateLimit ?? DEFAULT_RATE_LIMIT);
    this.warnings = new LimitedLog(options.log, 1);
  }

  accept(request: IncomingMessage, socket: TLSSocket, head: Buffer, remote: string): void {
    const source = socket.remoteAddress ?? remote;
    if (!this.limiter.take(source)) {
      const reason = `too many join attempts from ${source}; wait and retry`;
      this.warnings.warn(source, { remote, reason }, 'join refused: too many attempts');
      refuseUpgrade(socket, 429, reason);
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      const session = new JoinSession(this.options, remote, this.warnings);
      const channel = new Channel(
        ws,
        { nodeId: '(joining)', serial: '', remote },
        session.handlers,
        JOIN_LIMITS,
        this.warnings,
      );
      const timer = setTimeout(
        () => channel.close(1008, 'join session timed out'),
        this.options.sessionTimeoutMs ?? 10_000,
      );
      channel.onClose(() => clearTimeout(timer));
    });
  }
}

/** One connection's state: a fresh nonce, good for a single certificate attempt. */
class JoinSession {
  private nonce: Buffer | undefined;
  readonly handlers: ReadonlyMap<string, Handler>;

  constructor(
    private readonly options: JoinServiceOptions,
    private readonly remote: string,
    private readonly warnings: LimitedLog,
  ) {
    this.handlers = new Map<string, Handler>([
      [JOIN_CHALLENGE, () => this.challenge()],
      [JOIN_CERTIFICATE, (body) => this.certificate(body)],
    ]);
  }

  private challenge(): ChallengeResponse {
    this.nonce = randomBytes(32);
    return { nonce: this.nonce };
  }

  private async certificate(body: unknown): Promise<CertificateResponse> {
    const nonce = this.nonce;
    this.nonce = undefined;
    try {
      return await this.issue(body, nonce);
    } catch (error) {
      const { host } = splitHostPort(this.remote);
      this.warnings.warn(
        host,
        { remote: this.remote, reason: (error as Error).message },
        'join refused',
      );
      throw error;
    }
  }

  private async issue(body: unknown, nonce: Buffer | undefined): Promise<CertificateResponse> {
    if (!nonce) throw new Error('ask for a challenge first; each challenge allows one attempt');
    if (!isCertificateRequest(body)) throw new Error('malformed certificate request');
    const ca = await this.options.ca();
    if (body.clusterId !== ca.clusterId) {
      throw new Error(`token is for cluster ${body.clusterId}, this is cluster ${ca.clusterId}`);
    }
    const secrets = await this.options.secrets();
    const proves = (secret: string | undefined) =>
      secret !== undefined && proofMatches(joinProof(secret, nonce, body.csrPem), body.proof);
    const manager = proves(secrets.manager);
    if (!manager && !proves(secrets.worker)) {
      throw new Error('wrong join secret (a rotated token is no longer valid)');
    }
    const issuers = this.options.issuers?.() ?? [ca.certPem];
    const nodeId = body.rejoin
      ? returningNode(body.rejoin, ca.clusterId, issuers, nonce, body.csrPem)
      : newNodeId();
    const issued = ca.issueFromCsr(body.csrPem, nodeId, this.options.validDays?.());
    const node: IssuedNode = {
      nodeId,
      serial: issued.serial,
      notAfter: describeCertificate(issued.certPem).notAfter.getTime(),
      workerOnly: !manager,
      remote: this.remote,
    };
    if (body.rejoin) await this.options.readmit(node);
    else
      await this.options.register(node).catch((error: Error) => {
        throw new Error(`the cluster could not record the new node: ${error.message}`);
      });
    this.options.log.info(
      {
        remote: this.remote,
        [body.rejoin ? 'rejoined' : 'joined']: nodeId,
        serial: issued.serial,
        ...(node.workerOnly && { workerOnly: true }),
      },
      'certificate issued',
    );
    return {
      nodeId,
      certPem: issued.certPem,
      caCertPem: ca.certPem,
      voters: this.options.voters(),
      workerOnly: node.workerOnly,
    };
  }
}
