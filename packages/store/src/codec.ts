import { Packr } from 'msgpackr';
import type { Command } from './kv/types.ts';

// Log entries and state machine snapshots are msgpack. Byte values stay bytes.
const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeCommand(cmd: Command): Uint8Array {
  return packr.pack(cmd);
}

/** Decodes a log entry's command; undefined when the bytes are not one (never applied then). */
export function decodeCommand(data: Uint8Array): Command | undefined {
  try {
    const v = packr.unpack(data) as Command;
    return typeof v === 'object' && v !== null && typeof v.request === 'object' && v.request !== null ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A state machine snapshot (whatever the host puts in it) as bytes for a Raft snapshot. */
export function encodeSnapshot(state: unknown): Uint8Array {
  return packr.pack(state);
}

export function decodeSnapshot(data: Uint8Array): unknown {
  return packr.unpack(data);
}

/** What a membership change carries besides the node id: how to reach the member. */
export interface MemberContext {
  readonly peerUrl: string;
  readonly clientUrl?: string;
}

export function encodeMember(m: MemberContext): Uint8Array {
  return packr.pack(m);
}

export function decodeMember(data: Uint8Array | undefined): MemberContext | undefined {
  if (data === undefined) return undefined;
  try {
    const v = packr.unpack(data) as MemberContext;
    return typeof v?.peerUrl === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}
