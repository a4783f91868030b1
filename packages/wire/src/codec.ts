import { Packr } from 'msgpackr';
import { WireError } from './errors.ts';

// Plain maps and arrays on the wire, no msgpackr "records": every frame decodes on its own,
// whichever connection it came from, and binary fields arrive as Uint8Array (Buffer in Node).
const packr = new Packr({ useRecords: false, moreTypes: false });

export type Frame = Record<string, unknown>;

export function encodeFrame(frame: Frame): Uint8Array {
  return packr.pack(frame);
}

/** How deeply a frame may nest; the protocol's frames need a dozen levels, objects in them 100. */
export const MAX_FRAME_DEPTH = 128;

/**
 * Decodes one frame; throws WireError `malformed-frame` for anything but a msgpack map, and
 * `frame-too-large` for one that declares more than `maxValues` values or nests deeper than
 * MAX_FRAME_DEPTH (measured first, without decoding).
 */
export function decodeFrame(bytes: Uint8Array, maxValues = Number.POSITIVE_INFINITY): Frame {
  if (maxValues !== Number.POSITIVE_INFINITY) {
    const why = measureFrame(bytes, maxValues, MAX_FRAME_DEPTH);
    if (why !== undefined) throw new WireError('frame-too-large', why);
  }
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    throw new WireError('malformed-frame', `frame is not valid msgpack (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new WireError('malformed-frame', 'frame is not a msgpack map');
  }
  return value as Frame;
}

/**
 * Why a msgpack value is too big to decode (it declares more than `maxValues` values, or nests
 * deeper than `maxDepth`), or undefined. One pass over its headers, stepping over the bytes of
 * strings and binaries; it does not check the rest (the decoder does), so a truncated or
 * malformed value is left to the decoder to refuse.
 */
export function measureFrame(b: Uint8Array, maxValues: number, maxDepth: number): string | undefined {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u8 = (at: number): number => (at < b.length ? b[at]! : 0);
  const u16 = (at: number): number => (at + 2 <= b.length ? view.getUint16(at) : 0);
  const u32 = (at: number): number => (at + 4 <= b.length ? view.getUint32(at) : 0);
  const open: number[] = []; // slots left in each open map or list
  let declared = 1;
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let head = 1;
    let skip = 0;
    let items = 0;
    if (c <= 0x7f || c >= 0xe0 || c === 0xc0 || c === 0xc2 || c === 0xc3) {
      // fixint, nil, false, true
    } else if (c <= 0x8f) items = (c & 0x0f) * 2;
    else if (c <= 0x9f) items = c & 0x0f;
    else if (c <= 0xbf) skip = c & 0x1f;
    else {
      switch (c) {
        case 0xc4: case 0xd9: head = 2; skip = u8(i + 1); break; // bin8, str8
        case 0xc5: case 0xda: head = 3; skip = u16(i + 1); break; // bin16, str16
        case 0xc6: case 0xdb: head = 5; skip = u32(i + 1); break; // bin32, str32
        case 0xc7: head = 3; skip = u8(i + 1); break; // ext8
        case 0xc8: head = 4; skip = u16(i + 1); break; // ext16
        case 0xc9: head = 6; skip = u32(i + 1); break; // ext32
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break; // fixext 1..16: a type byte and the data
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: head = 3; items = u16(i + 1); break; // array16
        case 0xdd: head = 5; items = u32(i + 1); break; // array32
        case 0xde: head = 3; items = u16(i + 1) * 2; break; // map16
        case 0xdf: head = 5; items = u32(i + 1) * 2; break; // map32
        default:
          return undefined; // 0xc1 is never used: the decoder refuses it
      }
    }
    i += head + skip;
    while (open.length > 0 && open[open.length - 1] === 0) open.pop();
    if (open.length > 0) open[open.length - 1]!--;
    else if (i > head + skip) return undefined; // more than one value: the decoder refuses it
    if (items > 0) {
      declared += items;
      if (declared > maxValues) return `the frame declares more than ${maxValues} values; the limit is ${maxValues}`;
      open.push(items);
      if (open.length > maxDepth) return `the frame nests more than ${maxDepth} levels deep; the limit is ${maxDepth}`;
    }
  }
  return undefined;
}
