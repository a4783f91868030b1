// A small msgpack writer of our own, so frames can carry what msgpackr would refuse to write
// or would write differently: nesting deeper than a stack, raw bytes spliced in, extension
// types, duplicate keys, lengths that lie.
import { Bytes, ManyKeys, Nest, Rep } from './spec.ts';

/** Bytes written into the encoding as they are. */
export class RawMsgpack {
  constructor(
    readonly bytes: Uint8Array,
    readonly label: string,
  ) {}
  describe(): string {
    return `raw(${this.label}, ${this.bytes.byteLength} bytes)`;
  }
}

/** A map written with these entries in this order (duplicate keys allowed). */
export class Pairs {
  constructor(readonly entries: readonly (readonly [unknown, unknown])[]) {}
  describe(): string {
    return `pairs(${this.entries.length})`;
  }
}

/** An extension value: type -128…127 and its payload. */
export class Ext {
  constructor(
    readonly type: number,
    readonly payload: Uint8Array,
  ) {}
  describe(): string {
    return `ext(${this.type}, ${this.payload.byteLength} bytes)`;
  }
}

class Writer {
  private chunks: Buffer[] = [];
  private cur = Buffer.allocUnsafe(65536);
  private at = 0;
  size = 0;
  byte(b: number): void {
    if (this.at === this.cur.length) this.flush();
    this.cur[this.at++] = b & 0xff;
    this.size++;
  }
  bytes(b: Uint8Array): void {
    if (b.byteLength <= this.cur.length - this.at) {
      this.cur.set(b, this.at);
      this.at += b.byteLength;
    } else {
      this.flush();
      if (b.byteLength < 4096) {
        this.cur.set(b, 0);
        this.at = b.byteLength;
      } else this.chunks.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    }
    this.size += b.byteLength;
  }
  u16(n: number): void {
    this.byte(n >>> 8);
    this.byte(n);
  }
  u32(n: number): void {
    this.byte(n >>> 24);
    this.byte(n >>> 16);
    this.byte(n >>> 8);
    this.byte(n);
  }
  private flush(): void {
    if (this.at > 0) {
      this.chunks.push(this.cur.subarray(0, this.at));
      this.cur = Buffer.allocUnsafe(65536);
      this.at = 0;
    }
  }
  done(): Buffer {
    this.flush();
    return Buffer.concat(this.chunks);
  }
}

export function encode(v: unknown): Buffer {
  const w = new Writer();
  write(w, v);
  return w.done();
}

function writeStr(w: Writer, s: string): void {
  const b = Buffer.from(s, 'utf8');
  const n = b.byteLength;
  if (n < 32) w.byte(0xa0 | n);
  else if (n < 256) {
    w.byte(0xd9);
    w.byte(n);
  } else if (n < 65536) {
    w.byte(0xda);
    w.u16(n);
  } else {
    w.byte(0xdb);
    w.u32(n);
  }
  w.bytes(b);
}

function writeBin(w: Writer, b: Uint8Array): void {
  const n = b.byteLength;
  if (n < 256) {
    w.byte(0xc4);
    w.byte(n);
  } else if (n < 65536) {
    w.byte(0xc5);
    w.u16(n);
  } else {
    w.byte(0xc6);
    w.u32(n);
  }
  w.bytes(b);
}

function writeHeader(w: Writer, n: number, fix: number, b16: number, b32: number): void {
  if (n < 16) w.byte(fix | n);
  else if (n < 65536) {
    w.byte(b16);
    w.u16(n);
  } else {
    w.byte(b32);
    w.u32(n);
  }
}

function write(w: Writer, v: unknown): void {
  if (v === null || v === undefined) return w.byte(0xc0);
  if (v === true) return w.byte(0xc3);
  if (v === false) return w.byte(0xc2);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v < 128) return w.byte(v);
    if (Number.isInteger(v) && v < 0 && v >= -32) return w.byte(0xe0 | (v + 32));
    if (Number.isInteger(v) && v >= 0 && v <= 0xffffffff) {
      w.byte(0xce);
      return w.u32(v);
    }
    if (Number.isInteger(v) && v < 0 && v >= -0x80000000) {
      w.byte(0xd2);
      return w.u32(v >>> 0);
    }
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    w.byte(0xcb);
    return w.bytes(b);
  }
  if (typeof v === 'bigint') {
    const b = Buffer.alloc(8);
    if (v < 0n) {
      b.writeBigInt64BE(BigInt.asIntN(64, v));
      w.byte(0xd3);
    } else {
      b.writeBigUInt64BE(BigInt.asUintN(64, v));
      w.byte(0xcf);
    }
    return w.bytes(b);
  }
  if (typeof v === 'string') return writeStr(w, v);
  if (v instanceof Rep) return writeStr(w, v.materialize());
  if (v instanceof ManyKeys) return write(w, JSON.parse(v.materialize()));
  if (v instanceof Bytes) return writeBin(w, v.materialize());
  if (v instanceof RawMsgpack) return w.bytes(v.bytes);
  if (v instanceof Nest) {
    // depth times a one-element array (or map {a: …}), then the inner value
    for (let i = 0; i < v.depth; i++) {
      if (v.open === '[') w.byte(0x91);
      else {
        w.byte(0x81);
        writeStr(w, 'a');
      }
    }
    return write(w, v.inner === '1' ? 1 : v.inner);
  }
  if (v instanceof Ext) {
    const n = v.payload.byteLength;
    const fixed: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
    if (fixed[n] !== undefined) w.byte(fixed[n]!);
    else if (n < 256) {
      w.byte(0xc7);
      w.byte(n);
    } else {
      w.byte(0xc9);
      w.u32(n);
    }
    w.byte(v.type & 0xff);
    return w.bytes(v.payload);
  }
  if (v instanceof Uint8Array) return writeBin(w, v);
  if (v instanceof Pairs) {
    writeHeader(w, v.entries.length, 0x80, 0xde, 0xdf);
    for (const [k, x] of v.entries) {
      write(w, k);
      write(w, x);
    }
    return;
  }
  if (Array.isArray(v)) {
    writeHeader(w, v.length, 0x90, 0xdc, 0xdd);
    for (const x of v) write(w, x);
    return;
  }
  if (typeof v === 'object') {
    const keys = Object.keys(v);
    writeHeader(w, keys.length, 0x80, 0xde, 0xdf);
    for (const k of keys) {
      writeStr(w, k);
      write(w, (v as Record<string, unknown>)[k]);
    }
    return;
  }
  w.byte(0xc0);
}
