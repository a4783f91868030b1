export const WIRE_ERROR_CODES = [
  /** The peer did not present a valid credential for this cluster. */
  'unauthorized',
  /** A frame could not be decoded, or was not an object. */
  'malformed-frame',
  /** A frame exceeds the configured maximum size. */
  'frame-too-large',
  /** The connection is closed (or not yet open). */
  'closed',
  /** An address or option is not usable. */
  'invalid-config',
] as const;

export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number];

/** The one error class of this package; callers switch on `code`. */
export class WireError extends Error {
  override readonly name = 'WireError';
  constructor(
    readonly code: WireErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isWireError(err: unknown, code?: WireErrorCode): err is WireError {
  return err instanceof WireError && (code === undefined || err.code === code);
}
