import { crc32 } from 'node:zlib';
import { KvError } from './errors.ts';

// Everything this store writes that it later trusts carries a checksum written with it: every
// record on disk (entries, hard state, snapshot, identity), and the payload of every normal log
// entry from the master that proposed it to every master that applies it. A mismatch means the
// bytes changed after they were written (a damaged disk, a bug); the master never answers from
// them. Layout of a sealed value:
//
//   0xC1 | kind (1 byte) | CRC-32 of kind + payload (4 bytes, big-endian) | payload
//
// 0xC1 is the one byte msgpack never uses, so a sealed value is never mistaken for a bare
// msgpack value (what Flotilla wrote before checksums).

const MAGIC = 0xc1;
const HEADER = 6;

/** The checksum the store uses everywhere, snapshot chunks included (native CRC-32). */
export function checksum(data: Uint8Array): number {
  return crc32(data);
}

export function seal(kind: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + payload.byteLength);
  out[0] = MAGIC;
  out[1] = kind;
  out.set(payload, HEADER);
  new DataView(out.buffer).setUint32(2, crc32(payload, crc32(out.subarray(1, 2))));
  return out;
}

/** Why a value is not a sound sealed value: 'unsealed' (no header) or 'damaged' (checksum). */
export type SealProblem = 'unsealed' | 'damaged';

/** The kind and payload of a sealed value, or the problem with it. */
export function unseal(data: Uint8Array): { kind: number; payload: Uint8Array } | SealProblem {
  if (data.byteLength < HEADER || data[0] !== MAGIC) return 'unsealed';
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const payload = data.subarray(HEADER);
  if (view.getUint32(2) !== crc32(payload, crc32(data.subarray(1, 2)))) return 'damaged';
  return { kind: data[1]!, payload };
}

/** unseal, or KvError `corrupt` naming `what` when the value is not sound. */
export function unsealOrThrow(data: Uint8Array, what: string): { kind: number; payload: Uint8Array } {
  const r = unseal(data);
  if (r === 'damaged') throw new KvError('corrupt', `${what} fails its checksum`);
  if (r === 'unsealed') throw new KvError('corrupt', `${what} carries no checksum`);
  return r;
}
