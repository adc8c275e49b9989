/**
 * The few parts of the DNS wire format the server reads and writes itself (RFC 1035): the header,
 * one question, and answers precomputed as bytes. Only the question is parsed on the hot path.
 */

export const TYPE = { A: 1, NS: 2, SOA: 6, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const CLASS_IN = 1;
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;
/** Without EDNS a UDP answer may be this long (RFC 1035 §4.2.1); a longer one is truncated. */
export const UDP_MAX = 512;

export interface Question {
  id: number;
  /** The query's recursion-desired bit, echoed. */
  rd: boolean;
  /** Lower case, without the trailing dot ("web.shop.mesh"); "" for the root. */
  name: string;
  type: number;
  klass: number;
  /** Where the question ends in the query: the answer copies query[12, end). */
  end: number;
}

export type Parsed = { question: Question } | { error: number; id: number } | undefined;

/**
 * The query's one question; an error code for a query this server cannot answer (FORMERR,
 * NOTIMP); undefined for something to drop (too short, or a response).
 */
export function parseQuery(query: Buffer): Parsed {
  if (query.length < 12) return undefined;
  const id = query.readUInt16BE(0);
  const flags = query.readUInt16BE(2);
  if (flags & 0x8000) return undefined; // a response: never answer one
  if ((flags >> 11) & 0xf) return { error: RCODE.NOTIMP, id };
  if (query.readUInt16BE(4) !== 1) return { error: RCODE.FORMERR, id };
  let offset = 12;
  let name = '';
  for (;;) {
    const length = query[offset];
    if (length === undefined || length > 63) return { error: RCODE.FORMERR, id };
    offset += 1;
    if (length === 0) break;
    if (offset + length > query.length || name.length > 255) return { error: RCODE.FORMERR, id };
    name += (name ? '.' : '') + query.toString('latin1', offset, offset + length).toLowerCase();
    offset += length;
  }
  if (offset + 4 > query.length) return { error: RCODE.FORMERR, id };
  return {
    question: {
      id,
      rd: (flags & 0x0100) !== 0,
      name,
      type: query.readUInt16BE(offset),
      klass: query.readUInt16BE(offset + 2),
      end: offset + 4,
    },
  };
}

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE).map(([name, n]) => [n, name]));
const RCODE_NAMES = new Map<number, string>(Object.entries(RCODE).map(([name, n]) => [n, name]));

/**
 * What an answer was, in names a metric may carry (a bounded set, `other` for the rest): the
 * type of its question and its response code. Answers echo the question uncompressed at 12.
 */
export function answerKind(answer: Buffer): { type: string; rcode: string } {
  let offset = 12;
  while (offset < answer.length && answer[offset] !== 0) offset += (answer[offset] as number) + 1;
  const type = offset + 3 <= answer.length ? answer.readUInt16BE(offset + 1) : -1;
  const rcode = (answer[3] ?? 0) & 0x0f;
  return { type: TYPE_NAMES.get(type) ?? 'other', rcode: RCODE_NAMES.get(rcode) ?? 'other' };
}

/** Records after the question, as bytes, and how many of each section they hold. */
export interface Sections {
  rcode: number;
  /** Authoritative: the zone's own answers. */
  aa: boolean;
  body: Buffer;
  an: number;
  ns: number;
  ar: number;
}

/** The answer to a query: its ID and question, then the precomputed sections. */
export function respond(query: Buffer, q: Question, sections: Sections, maxBytes: number): Buffer {
  const length = q.end + sections.body.length;
  const truncated = length > maxBytes;
  const out = Buffer.allocUnsafe(truncated ? q.end : length);
  out.writeUInt16BE(q.id, 0);
  out.writeUInt16BE(
    0x8000 |
      (sections.aa ? 0x0400 : 0) |
      (truncated ? 0x0200 : 0) |
      (q.rd ? 0x0100 : 0) |
      0x0080 |
      sections.rcode,
    2,
  );
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(truncated ? 0 : sections.an, 6);
  out.writeUInt16BE(truncated ? 0 : sections.ns, 8);
  out.writeUInt16BE(truncated ? 0 : sections.ar, 10);
  query.copy(out, 12, 12, q.end);
  if (!truncated) sections.body.copy(out, q.end);
  return out;
}

/** An answer with only a response code (and the question, when it could be read). */
export function failure(query: Buffer, id: number, rcode: number, question?: Question): Buffer {
  if (question)
    return respond(
      query,
      question,
      { rcode, aa: false, body: EMPTY, an: 0, ns: 0, ar: 0 },
      Infinity,
    );
  const out = Buffer.alloc(12);
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(0x8000 | 0x0080 | rcode, 2);
  return out;
}

const EMPTY = Buffer.alloc(0);

/** A domain name in wire form, uncompressed. */
export function encodeName(name: string): Buffer {
  const parts = name ? name.split('.') : [];
  return Buffer.concat([
    ...parts.map((label) =>
      Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')]),
    ),
    Buffer.from([0]),
  ]);
}

/** A pointer to a name at this offset of the message (RFC 1035 §4.1.4). */
export function pointer(offset: number): Buffer {
  return Buffer.from([0xc0 | (offset >> 8), offset & 0xff]);
}

/** One resource record: owner (already encoded), type, class IN, TTL, data. */
export function record(owner: Buffer, type: number, ttl: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(CLASS_IN, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([owner, fixed, data]);
}
