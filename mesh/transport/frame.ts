import { Packr } from 'msgpackr';

/**
 * Wire frames are msgpack arrays, tagged by their first element:
 *   [MESSAGE, type, body]      one-way
 *   [REQUEST, id, type, body]  expects a RESPONSE or a FAILURE with the same id
 *   [RESPONSE, id, body]
 *   [FAILURE, id, message]
 *   [PART, more, bytes]        a piece of one of the above too big for a frame: the pieces come
 *                              one after another, the last with more = false
 */
export const MESSAGE = 0;
export const REQUEST = 1;
export const RESPONSE = 2;
export const FAILURE = 3;
export const PART = 4;

export type Frame =
  | { kind: typeof MESSAGE; type: string; body: unknown }
  | { kind: typeof REQUEST; id: number; type: string; body: unknown }
  | { kind: typeof RESPONSE; id: number; body: unknown }
  | { kind: typeof FAILURE; id: number; message: string };

/** A piece of an encoded frame; a frame of pieces holds no further pieces. */
export interface Part {
  kind: typeof PART;
  more: boolean;
  bytes: Buffer;
}

/** What a part frame adds to its bytes: the array, tag, flag and binary headers, with room. */
export const PART_OVERHEAD_BYTES = 16;

/** A frame this node refuses to read; the connection that carried it is closed. */
export class FrameError extends Error {
  override name = 'FrameError';
}

// Plain maps and arrays only: no record extension, so any msgpack implementation can speak to us.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

const MAX_TYPE_LENGTH = 64;

export function encodeFrame(frame: Frame | Part): Buffer {
  switch (frame.kind) {
    case PART:
      return packr.pack([PART, frame.more, frame.bytes]);
    case MESSAGE:
      return packr.pack([MESSAGE, frame.type, frame.body]);
    case REQUEST:
      return packr.pack([REQUEST, frame.id, frame.type, frame.body]);
    case RESPONSE:
      return packr.pack([RESPONSE, frame.id, frame.body]);
    case FAILURE:
      return packr.pack([FAILURE, frame.id, frame.message]);
  }
}

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

function isType(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_TYPE_LENGTH;
}

export function decodeFrame(data: Buffer): Frame | Part {
  let value: unknown;
  try {
    value = packr.unpack(data);
  } catch (error) {
    throw new FrameError(`not msgpack: ${(error as Error).message}`);
  }
  if (!Array.isArray(value)) throw new FrameError(`expected an array frame, got ${typeof value}`);
  const [kind, a, b, c] = value;
  if (kind === MESSAGE && value.length === 3 && isType(a)) return { kind, type: a, body: b };
  if (kind === REQUEST && value.length === 4 && isId(a) && isType(b)) {
    return { kind, id: a, type: b, body: c };
  }
  if (kind === RESPONSE && value.length === 3 && isId(a)) return { kind, id: a, body: b };
  if (kind === FAILURE && value.length === 3 && isId(a) && typeof b === 'string') {
    return { kind, id: a, message: b };
  }
  if (kind === PART && value.length === 3 && typeof a === 'boolean' && b instanceof Uint8Array) {
    return { kind, more: a, bytes: Buffer.from(b.buffer, b.byteOffset, b.byteLength) };
  }
  throw new FrameError(`frame of unknown shape (tag ${String(kind)}, ${value.length} elements)`);
}
