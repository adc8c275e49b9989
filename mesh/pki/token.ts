import { createHash, randomBytes } from 'node:crypto';
import { UserError } from '../user-error.js';

const PREFIX = 'MESH-';
const VERSION = 1;

/** What a joining node needs: where to go, whom to trust, and what to prove. */
export interface JoinToken {
  clusterId: string;
  /** host:port of nodes that can issue certificates. */
  seeds: string[];
  /** SHA-256 of the cluster CA certificate (hex). */
  caPin: string;
  /** The shared join secret, base64url. */
  secret: string;
}

export class JoinTokenError extends UserError {
  override name = 'JoinTokenError';
}

export function newJoinSecret(): string {
  return randomBytes(32).toString('base64url');
}

function checksum(body: string): string {
  return createHash('sha256').update(body).digest('hex').slice(0, 8);
}

/** MESH-1-<base64url(JSON)>.<checksum>: the checksum turns a copy-paste accident into a clear error. */
export function encodeJoinToken(token: JoinToken): string {
  const body = Buffer.from(
    JSON.stringify({ c: token.clusterId, s: token.seeds, p: token.caPin, k: token.secret }),
  ).toString('base64url');
  return `${PREFIX}${VERSION}-${body}.${checksum(body)}`;
}

const SEED = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

export function decodeJoinToken(text: string): JoinToken {
  const token = text.trim();
  const head = /^MESH-(\d+)-/.exec(token);
  if (!head) {
    throw new JoinTokenError(
      `not a mesh join token: it should start with "${PREFIX}${VERSION}-" (print one with "mesh token" on a cluster node)`,
    );
  }
  if (Number(head[1]) !== VERSION) {
    throw new JoinTokenError(
      `join token version ${head[1]} is not understood by this mesh, which reads version ${VERSION}`,
    );
  }
  const rest = token.slice(head[0].length);
  const dot = rest.lastIndexOf('.');
  const body = dot < 0 ? rest : rest.slice(0, dot);
  if (dot < 0 || rest.slice(dot + 1) !== checksum(body)) {
    throw new JoinTokenError(
      'join token is damaged (its checksum does not match): copy it again, whole',
    );
  }
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch (error) {
    throw new JoinTokenError(`join token payload is not readable: ${(error as Error).message}`);
  }
  const { c, s, p, k } = payload;
  if (typeof c !== 'string' || c === '') throw new JoinTokenError('join token has no cluster ID');
  if (
    !Array.isArray(s) ||
    s.length === 0 ||
    !s.every((x) => typeof x === 'string' && SEED.test(x))
  ) {
    throw new JoinTokenError('join token seeds must be a non-empty list of host:port addresses');
  }
  if (typeof p !== 'string' || !/^[0-9a-f]{64}$/.test(p)) {
    throw new JoinTokenError('join token CA pin must be 64 hex digits (a SHA-256)');
  }
  if (typeof k !== 'string' || Buffer.from(k, 'base64url').length < 16) {
    throw new JoinTokenError('join token secret is missing or too short');
  }
  return { clusterId: c, seeds: s, caPin: p, secret: k };
}
