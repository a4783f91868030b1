import type { MvccStore } from './kv/mvcc.ts';

/**
 * The leader's lease clock. Lease lifetimes are counted only by the leader, in its own time:
 * from its election (every lease gets its full TTL again, as etcd does), from the grant, or
 * from the last keep-alive. When one runs out the leader proposes its revocation, so expiry is
 * decided once and replicated like any write.
 */
export class LeaseClock {
  private readonly deadlines = new Map<number, number>();
  /** Leases whose revocation has been proposed and not yet applied. */
  private readonly revoking = new Set<number>();

  /** This master just became leader: restart every lease's countdown. */
  lead(store: MvccStore, now: number): void {
    this.deadlines.clear();
    this.revoking.clear();
    for (const id of store.leaseIds()) this.deadlines.set(id, now + store.leaseTtl(id)! * 1000);
  }

  /** This master is no longer leader. */
  stop(): void {
    this.deadlines.clear();
    this.revoking.clear();
  }

  /** A grant or keep-alive was applied while leading. */
  renew(id: number, ttlSeconds: number, now: number): void {
    this.deadlines.set(id, now + ttlSeconds * 1000);
    this.revoking.delete(id);
  }

  forget(id: number): void {
    this.deadlines.delete(id);
    this.revoking.delete(id);
  }

  /** Leases that ran out and are not yet being revoked; they are marked as being revoked. */
  expired(now: number): number[] {
    const out: number[] = [];
    for (const [id, deadline] of this.deadlines) {
      if (deadline <= now && !this.revoking.has(id)) {
        this.revoking.add(id);
        out.push(id);
      }
    }
    return out;
  }

  /** A revocation was lost (leadership moved, or it timed out): allow proposing it again. */
  retry(id: number): void {
    this.revoking.delete(id);
  }
}
