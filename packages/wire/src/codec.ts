import { Packr } from 'msgpackr';
import { WireError } from './errors.ts';

// Plain maps and arrays on the wire, no msgpackr "records": every frame decodes on its own,
// whichever connection it came from, and binary fields arrive as Uint8Array (Buffer in Node).
const packr = new Packr({ useRecords: false, moreTypes: false });

export type Frame = Record<string, unknown>;

export function encodeFrame(frame: Frame): Uint8Array {
  return packr.pack(frame);
}

/** Decodes one frame; throws WireError `malformed-frame` for anything but a msgpack map. */
export function decodeFrame(bytes: Uint8Array): Frame {
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
