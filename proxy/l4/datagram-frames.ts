/**
 * Datagrams over a byte stream (a UDP flow carried to another node over the cluster's mTLS): each
 * one prefixed by its length in two bytes, big-endian, which any UDP payload fits (at most 65,507
 * bytes over IPv4). Pure: the caller owns the stream.
 */

/** The largest payload a UDP datagram over IPv4 carries. */
export const MAX_DATAGRAM_BYTES = 65_507;

/** One datagram as it goes on the stream. */
export function frameDatagram(payload: Buffer): Buffer {
  if (payload.length > MAX_DATAGRAM_BYTES)
    throw new RangeError(`a datagram of ${payload.length} bytes is over the UDP limit`);
  const head = Buffer.allocUnsafe(2);
  head.writeUInt16BE(payload.length, 0);
  return Buffer.concat([head, payload]);
}

/** Cuts a stream's chunks, however they are split, back into the datagrams that were framed. */
export class DatagramReader {
  private pending: Buffer = Buffer.alloc(0);

  /** The datagrams complete with this chunk, in order; a partial one waits for the next chunk. */
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const datagrams: Buffer[] = [];
    while (this.pending.length >= 2) {
      const length = this.pending.readUInt16BE(0);
      if (this.pending.length < 2 + length) break;
      datagrams.push(this.pending.subarray(2, 2 + length));
      this.pending = this.pending.subarray(2 + length);
    }
    return datagrams;
  }
}
