import { Packr } from 'msgpackr';
import type { Command } from './kv/types.ts';
import { seal, unseal } from './integrity.ts';
import { packPieces, sealPieces } from './pieces.ts';

// Log entries and state machine snapshots are msgpack, sealed with a checksum (integrity.ts)
// by the master that wrote them. Byte values stay bytes.
const packr = new Packr({ useRecords: false, moreTypes: false });

/** Kinds of sealed log payloads and snapshots. */
const COMMAND = 1;
const CLUSTER_ID = 2;
const STATE = 3;

export function encodeCommand(cmd: Command): Uint8Array {
  return seal(COMMAND, packr.pack(cmd));
}

/** The cluster's id, chosen once by its first leader (see StoreNode). */
export function encodeClusterId(id: string): Uint8Array {
  return seal(CLUSTER_ID, packr.pack({ id }));
}

/**
 * What a normal log entry's payload holds: a command, the cluster id, nothing this version
 * writes (`unknown`: skipped alike on every master), or bytes whose checksum does not match
 * (`damaged`: they changed on this master after they were written).
 */
export type EntryPayload =
  | { readonly kind: 'command'; readonly command: Command }
  | { readonly kind: 'clusterId'; readonly id: string }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'damaged' };

export function decodePayload(data: Uint8Array): EntryPayload {
  const r = unseal(data);
  if (r === 'damaged') return { kind: 'damaged' };
  if (r === 'unsealed') return { kind: 'unknown' };
  try {
    const v = packr.unpack(r.payload) as Record<string, unknown> | null;
    if (typeof v !== 'object' || v === null) return { kind: 'unknown' };
    if (r.kind === COMMAND && typeof v['request'] === 'object' && v['request'] !== null) return { kind: 'command', command: v as unknown as Command };
    if (r.kind === CLUSTER_ID && typeof v['id'] === 'string' && /^[0-9a-f]{16,64}$/.test(v['id'])) return { kind: 'clusterId', id: v['id'] };
  } catch {
    // not msgpack: unknown
  }
  return { kind: 'unknown' };
}

/** Whether a normal entry's payload is intact (empty and unsealed payloads have no checksum to fail). */
export function payloadIntact(data: Uint8Array): boolean {
  return unseal(data) !== 'damaged';
}

/** A state machine snapshot (whatever the host puts in it) as sealed bytes for a Raft snapshot. */
export function encodeSnapshot(state: unknown): Uint8Array {
  return seal(STATE, packr.pack(state));
}

/** The same bytes as encodeSnapshot, built a few milliseconds of work at a time (pieces.ts). */
export async function encodeSnapshotAsync(state: unknown): Promise<Uint8Array> {
  return sealPieces(STATE, await packPieces(packr, state));
}

/** Decodes a state machine snapshot; throws an Error saying why when its checksum or kind is wrong. */
export function decodeSnapshot(data: Uint8Array): unknown {
  const r = unseal(data);
  if (r === 'damaged') throw new Error('the snapshot fails its checksum');
  if (r === 'unsealed' || r.kind !== STATE) throw new Error('the snapshot carries no checksum');
  return packr.unpack(r.payload);
}

/** What a membership change carries besides the node id: how to reach the member. */
export interface MemberContext {
  readonly peerUrl: string;
  readonly clientUrl?: string;
}

/**
 * What a removal carries: the member id of the incarnation removed, when the leader knew it. A
 * master that replays the removal later (one added since, catching up from an empty log)
 * retires that id, not the id of whoever has the name by then.
 */
export interface RemovalContext {
  readonly memberId: string;
}

export function encodeMember(m: MemberContext): Uint8Array {
  return packr.pack(m);
}

export function encodeRemoval(r: RemovalContext): Uint8Array {
  return packr.pack(r);
}

export function decodeMember(data: Uint8Array | undefined): MemberContext | undefined {
  return unpackContext<MemberContext>(data, 'peerUrl');
}

export function decodeRemoval(data: Uint8Array | undefined): RemovalContext | undefined {
  return unpackContext<RemovalContext>(data, 'memberId');
}

/** A change's context as an object whose `key` is a string; undefined for anything else. */
function unpackContext<T>(data: Uint8Array | undefined, key: keyof T & string): T | undefined {
  if (data === undefined) return undefined;
  try {
    const v = packr.unpack(data) as Record<string, unknown> | null;
    return typeof v?.[key] === 'string' ? (v as T) : undefined;
  } catch {
    return undefined;
  }
}
