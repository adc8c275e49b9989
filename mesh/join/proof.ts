import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Proof that the joiner knows the join secret, bound to the seed's fresh nonce (no replay) and to
 * the CSR (a proof cannot be lifted onto another key). The secret itself never crosses the wire.
 */
export function joinProof(secret: string, nonce: Buffer, csrPem: string): Buffer {
  const csrDigest = createHash('sha256').update(csrPem).digest();
  return createHmac('sha256', Buffer.from(secret, 'base64url'))
    .update(nonce)
    .update(csrDigest)
    .digest();
}

export function proofMatches(expected: Buffer, given: unknown): boolean {
  return (
    given instanceof Uint8Array &&
    given.length === expected.length &&
    timingSafeEqual(expected, given)
  );
}

/**
 * What a returning node signs with the key of its old certificate: the seed's nonce and the new
 * CSR, so that only the holder of that key can take the node's identity onto a new key.
 */
export function rejoinPayload(nonce: Buffer, csrPem: string): Buffer {
  return Buffer.concat([Buffer.from('mesh-rejoin\0'), nonce, Buffer.from(csrPem)]);
}
