// Encoding a large value (a state machine snapshot, the record that stores it) without holding
// the event loop. `packr.pack` and `seal` do it in one step: 800 ms for a 50 MB store, 3.8 s
// for 150 MB, on every master at once, since all of them snapshot at about the same index (a
// leader stalled that long loses its term). Here the same bytes are built a piece at a time:
// maps and lists large enough are written as their msgpack header followed by their members,
// each packed on its own; large binaries are referenced, not copied; the checksum is computed
// over the pieces and the pieces are copied into the result, yielding to the event loop every
// few milliseconds throughout. The result decodes exactly as `packr.pack(value)` does.
import { crc32 } from 'node:zlib';
import type { Packr } from 'msgpackr';

/** Values smaller than this are packed in one step. */
const SMALL = 64 * 1024;
/** How long one step may run before the event loop gets its turn. */
const SLICE_MS = 8;

type Pieces = Uint8Array[];

/** Lets the event loop run if this step has run for SLICE_MS. */
class Slicer {
  private since = performance.now();

  async maybeYield(): Promise<void> {
    if (performance.now() - this.since < SLICE_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.since = performance.now();
  }
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** Whether `v` takes at least `limit` bytes, walked without recursion and no further than that. */
function atLeast(v: unknown, limit: number): boolean {
  const stack: unknown[] = [v];
  let bytes = 0;
  while (stack.length > 0) {
    const x = stack.pop();
    if (x instanceof Uint8Array) bytes += x.byteLength;
    else if (typeof x === 'string') bytes += x.length;
    else if (Array.isArray(x)) {
      bytes += 1;
      for (const item of x) stack.push(item);
    } else if (isPlainObject(x)) {
      for (const [k, item] of Object.entries(x)) {
        bytes += k.length;
        stack.push(item);
      }
    } else bytes += 8;
    if (bytes >= limit) return true;
  }
  return false;
}

function header(small: number, mid: number, big: number, n: number, fixMax: number): Uint8Array {
  if (n <= fixMax) return Uint8Array.of(small | n);
  if (n < 0x10000) return Uint8Array.of(mid, n >> 8, n & 0xff);
  const h = new Uint8Array(5);
  h[0] = big;
  new DataView(h.buffer).setUint32(1, n);
  return h;
}

function binHeader(n: number): Uint8Array {
  if (n < 0x100) return Uint8Array.of(0xc4, n);
  if (n < 0x10000) return Uint8Array.of(0xc5, n >> 8, n & 0xff);
  const h = new Uint8Array(5);
  h[0] = 0xc6;
  new DataView(h.buffer).setUint32(1, n);
  return h;
}

async function packInto(packr: Packr, v: unknown, out: Pieces, slicer: Slicer): Promise<void> {
  if (v instanceof Uint8Array && v.byteLength >= SMALL) {
    out.push(binHeader(v.byteLength), v);
  } else if (Array.isArray(v) && atLeast(v, SMALL)) {
    out.push(header(0x90, 0xdc, 0xdd, v.length, 15));
    for (const item of v) {
      await packInto(packr, item, out, slicer);
      await slicer.maybeYield();
    }
  } else if (isPlainObject(v) && Object.getPrototypeOf(v) === Object.prototype && atLeast(v, SMALL)) {
    const entries = Object.entries(v);
    // msgpackr writes a plain object's header as map16 whatever its size (it reserves the room
    // before it counts the keys); the same here, so that the bytes are the same.
    out.push(header(0x80, 0xde, 0xdf, entries.length, -1));
    for (const [k, item] of entries) {
      out.push(packr.pack(k));
      await packInto(packr, item, out, slicer);
      await slicer.maybeYield();
    }
  } else {
    out.push(packr.pack(v));
  }
}

/** `packr.pack(value)` as pieces, a few milliseconds of work at a time. */
export async function packPieces(packr: Packr, value: unknown): Promise<Pieces> {
  const out: Pieces = [];
  await packInto(packr, value, out, new Slicer());
  return out;
}

/**
 * `seal(kind, concat(pieces))` (integrity.ts: 0xC1, kind, CRC-32 of kind + payload, payload),
 * a slice at a time.
 */
export async function sealPieces(kind: number, pieces: Pieces): Promise<Uint8Array> {
  const slicer = new Slicer();
  let length = 0;
  for (const p of pieces) length += p.byteLength;
  const out = new Uint8Array(6 + length);
  out[0] = 0xc1;
  out[1] = kind;
  let crc = crc32(out.subarray(1, 2));
  let at = 6;
  for (const p of pieces) {
    // Large pieces in slices of 4 MiB, each about a millisecond of copying and checksumming.
    for (let from = 0; from < p.byteLength; from += 4 * 1024 * 1024) {
      const part = p.subarray(from, Math.min(p.byteLength, from + 4 * 1024 * 1024));
      crc = crc32(part, crc);
      out.set(part, at);
      at += part.byteLength;
      await slicer.maybeYield();
    }
  }
  new DataView(out.buffer).setUint32(2, crc);
  return out;
}
