import type { Snapshot, SnapshotMessage, SnapshotMetadata } from './types.ts';

export type ChunkResult =
  | { readonly kind: 'progress'; readonly received: number }
  | { readonly kind: 'complete'; readonly snapshot: Snapshot };

/**
 * The follower side of a chunked InstallSnapshot (§7, Figure 13). Chunks must arrive in order;
 * a duplicate or out-of-order chunk is answered with how much is held, so the leader resends
 * from there. A chunk of a different snapshot, or from a different leader term, starts over.
 */
export class SnapshotReceiver {
  private current:
    | { metadata: SnapshotMetadata; leaderTerm: number; chunks: Uint8Array[]; received: number }
    | undefined;

  receive(m: SnapshotMessage): ChunkResult {
    let c = this.current;
    const same =
      c !== undefined &&
      c.leaderTerm === m.term &&
      c.metadata.index === m.metadata.index &&
      c.metadata.term === m.metadata.term;
    if (c === undefined || !same) {
      if (m.offset !== 0) {
        this.current = undefined;
        return { kind: 'progress', received: 0 };
      }
      c = { metadata: m.metadata, leaderTerm: m.term, chunks: [], received: 0 };
      this.current = c;
    }
    if (m.offset !== c.received) return { kind: 'progress', received: c.received };
    c.chunks.push(m.data);
    c.received += m.data.byteLength;
    if (!m.done) return { kind: 'progress', received: c.received };
    this.current = undefined;
    return { kind: 'complete', snapshot: { metadata: m.metadata, data: concat(c.chunks, c.received) } };
  }

  /** Bytes held of the snapshot `m` belongs to (0 when another or none is in progress). */
  held(m: SnapshotMessage): number {
    const c = this.current;
    return c !== undefined && c.leaderTerm === m.term && c.metadata.index === m.metadata.index && c.metadata.term === m.metadata.term ? c.received : 0;
  }

  reset(): void {
    this.current = undefined;
  }
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!.slice();
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
