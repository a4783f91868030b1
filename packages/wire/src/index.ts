// @flotilla/wire: authenticated, framed WebSocket connections (ws + msgpackr) with
// heartbeats, reconnects, frame size limits and backpressure.

export { AUTH_HEADER, makeCredential, checkCredential, type CredentialCheck } from './auth.ts';
export { encodeFrame, decodeFrame, measureFrame, MAX_FRAME_DEPTH, type Frame } from './codec.ts';
export { WireConnection, InFlightLimit, CLOSE, DEFAULT_CONNECTION_OPTIONS, type ConnectionOptions } from './connection.ts';
export { Dialer, type DialOptions } from './dialer.ts';
export { WireError, isWireError, WIRE_ERROR_CODES, type WireErrorCode } from './errors.ts';
export { createLogger, silentLogger, type Logger } from './logger.ts';
export { WireServer, secretAuthenticator, type ServerOptions } from './server.ts';
export { freePort } from './ports.ts';
export { pace, createPacer, SLICE_MS, type Pacer } from './pace.ts';
export { lockDir, dirLockHolder, describeHolder, DirLock, DirLockedError, isDirLockedError, DIR_LOCK_FILE, type DirLockHolder } from './dir-lock.ts';
