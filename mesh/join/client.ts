import { createPrivateKey, sign, X509Certificate } from 'node:crypto';
import type { ConnectionOptions, DetailedPeerCertificate } from 'node:tls';
import { connect } from 'node:tls';
import type { Logger } from 'pino';
import { LimitedLog } from '../limited-log.js';
import { certificatePin, describeCertificate } from '../pki/certificate.js';
import type { NodeIdentity } from '../pki/identity.js';
import { createCsr, generateKeyPair, type KeyPair } from '../pki/keys.js';
import type { JoinToken } from '../pki/token.js';
import { splitHostPort } from '../transport/address.js';
import { Channel } from '../transport/channel.js';
import { dial } from '../transport/dial.js';
import { JOIN_PATH } from '../transport/listener.js';
import { UserError } from '../user-error.js';
import {
  type CertificateRequest,
  type CertificateResponse,
  type ChallengeResponse,
  JOIN_CERTIFICATE,
  JOIN_CHALLENGE,
  JOIN_LIMITS,
} from './messages.js';
import { joinProof, rejoinPayload } from './proof.js';

export class JoinError extends UserError {
  override name = 'JoinError';
}

export interface JoinOptions {
  log: Logger;
  /** Local address to connect from (the node's own address). */
  bindAddress?: string;
  timeoutMs?: number;
  /** Generated when not given. */
  keys?: KeyPair;
  /** A node coming back: its old identity, proved with its old key, is kept. */
  returning?: Pick<NodeIdentity, 'nodeId' | 'certPem' | 'keyPem'>;
}

function chainOf(leaf: DetailedPeerCertificate): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<DetailedPeerCertificate>();
  for (let cert = leaf; cert?.raw && !seen.has(cert); cert = cert.issuerCertificate) {
    seen.add(cert);
    chain.push(cert.raw);
  }
  return chain;
}

/**
 * Learns the cluster CA certificate from a seed, trusting it only if its SHA-256 matches the pin
 * and it signed the seed's own certificate. Nothing is sent to the seed but a TLS handshake.
 */
export function fetchPinnedCaCertificate(
  seed: string,
  pin: string,
  options: { bindAddress?: string; timeoutMs?: number } = {},
): Promise<string> {
  const { host, port } = splitHostPort(seed);
  return new Promise((resolve, reject) => {
    const tlsOptions: ConnectionOptions & { localAddress?: string } = {
      host,
      port,
      localAddress: options.bindAddress,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    };
    const socket = connect(tlsOptions);
    socket.setTimeout(options.timeoutMs ?? 5000, () =>
      socket.destroy(new Error('TLS handshake timed out')),
    );
    socket.once('error', (error) =>
      reject(new JoinError(`cannot reach seed ${seed}: ${error.message}`)),
    );
    socket.once('secureConnect', () => {
      const chain = chainOf(socket.getPeerCertificate(true));
      socket.destroy();
      const caDer = chain.find((der) => certificatePin(der) === pin);
      const leafDer = chain[0];
      if (!caDer || !leafDer) {
        const root = chain.at(-1);
        reject(
          new JoinError(
            `seed ${seed} is not part of the cluster this token is for: ` +
              `its CA pin is ${root ? certificatePin(root) : '(none)'}, the token pins ${pin}`,
          ),
        );
        return;
      }
      const ca = new X509Certificate(caDer);
      const leaf = new X509Certificate(leafDer);
      // Directly, or (mid-rotation) through the next CA cross-signed by the pinned one.
      const signed =
        leaf.verify(ca.publicKey) ||
        chain.slice(1).some((der) => {
          const cross = new X509Certificate(der);
          return cross.verify(ca.publicKey) && leaf.verify(cross.publicKey);
        });
      if (!signed) {
        reject(new JoinError(`seed ${seed} presents a certificate its pinned CA did not sign`));
        return;
      }
      resolve(ca.toString());
    });
  });
}

async function requestCertificate(
  seed: string,
  token: JoinToken,
  caCertPem: string,
  keys: KeyPair,
  options: JoinOptions,
): Promise<CertificateResponse> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const { ws, socket } = await dial(`wss://${seed}${JOIN_PATH}`, {
    ca: [caCertPem],
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    checkServerIdentity: (_host, cert) =>
      cert.subject?.O === token.clusterId
        ? undefined
        : new Error(`seed ${seed} belongs to cluster ${String(cert.subject?.O)}`),
    localAddress: options.bindAddress,
    handshakeTimeout: timeoutMs,
  });
  const seedCert = socket.getPeerCertificate();
  const channel = new Channel(
    ws,
    { nodeId: String(seedCert.subject?.CN), serial: seedCert.serialNumber, remote: seed },
    new Map(),
    JOIN_LIMITS,
    new LimitedLog(options.log, 1),
  );
  try {
    const { nonce } = (await channel.request(JOIN_CHALLENGE, {}, timeoutMs)) as ChallengeResponse;
    const csrPem = createCsr(keys);
    const returning = options.returning;
    const request: CertificateRequest = {
      clusterId: token.clusterId,
      csrPem,
      proof: joinProof(token.secret, Buffer.from(nonce), csrPem),
      ...(returning && {
        rejoin: {
          certPem: returning.certPem,
          signature: sign('sha256', rejoinPayload(Buffer.from(nonce), csrPem), returning.keyPem),
        },
      }),
    };
    return (await channel.request(JOIN_CERTIFICATE, request, timeoutMs)) as CertificateResponse;
  } finally {
    channel.close(1000, 'done');
  }
}

function checkIssued(
  issued: CertificateResponse,
  caCertPem: string,
  keys: KeyPair,
  returning: string | undefined,
): void {
  const cert = new X509Certificate(issued.certPem);
  if (!cert.verify(new X509Certificate(caCertPem).publicKey)) {
    throw new JoinError('issued certificate is not signed by the pinned CA');
  }
  if (!cert.checkPrivateKey(createPrivateKey(keys.privateKeyPem))) {
    throw new JoinError('issued certificate is not for our key');
  }
  if (describeCertificate(issued.certPem).nodeId !== issued.nodeId) {
    throw new JoinError('issued certificate names another node');
  }
  if (returning && issued.nodeId !== returning) {
    throw new JoinError(`asked to come back as node ${returning}, issued node ${issued.nodeId}`);
  }
  if (!Array.isArray(issued.voters) || !issued.voters.every((id) => typeof id === 'string')) {
    throw new JoinError('the seed named no Raft voters');
  }
}

/** What a join gives: this node's identity, and the voters whose Raft messages it follows first. */
export interface Joined {
  identity: NodeIdentity;
  voters: string[];
  /** It joined with a worker token. */
  workerOnly: boolean;
}

/**
 * Joins the cluster a token describes: tries its seeds in order until one issues a certificate.
 * A seed that refuses (wrong secret, other cluster) ends the attempt; an unreachable one does not.
 */
export async function joinCluster(token: JoinToken, options: JoinOptions): Promise<Joined> {
  const keys = options.keys ?? (await generateKeyPair());
  const failures: string[] = [];
  for (const seed of token.seeds) {
    let caCertPem: string;
    try {
      caCertPem = await fetchPinnedCaCertificate(seed, token.caPin, options);
    } catch (error) {
      failures.push((error as Error).message);
      if (!(error as Error).message.startsWith('cannot reach')) break;
      continue;
    }
    try {
      const issued = await requestCertificate(seed, token, caCertPem, keys, options);
      checkIssued(issued, caCertPem, keys, options.returning?.nodeId);
      options.log.info(
        { seed, nodeId: issued.nodeId },
        options.returning ? 'rejoined the cluster' : 'joined the cluster',
      );
      const identity: NodeIdentity = {
        clusterId: token.clusterId,
        nodeId: issued.nodeId,
        keyPem: keys.privateKeyPem,
        certPem: issued.certPem,
        caCertPem,
      };
      return { identity, voters: issued.voters, workerOnly: issued.workerOnly === true };
    } catch (error) {
      const message = `seed ${seed}: ${(error as Error).message}`;
      failures.push(message);
      options.log.warn({ seed, reason: (error as Error).message }, 'join attempt failed');
      if ((error as { code?: string }).code !== 'unreachable') break;
    }
  }
  throw new JoinError(`could not join cluster ${token.clusterId}: ${failures.join('; ')}`);
}
