import type { RequestOp, WriteRequest } from './kv/types.ts';

// The store's quota (etcd's --quota-backend-bytes): the size of the data kept (MvccStore's
// sizeBytes: every version not compacted away) may not pass it. A write that would add data
// beyond it is refused before it reaches the log, with the NOSPACE alarm raised, while
// reads, deletes, lease revocations and compactions go on, so space can always be freed. The
// alarm clears once the data is back below 90% of the quota. Checked only where writes are
// proposed, never when applying, so masters can never disagree about what the log did.

/** Bytes a version costs beyond key and value (as MvccStore counts). */
const OVERHEAD = 64;

/** The most a write can add to the data kept (0 for writes that only remove or keep it). */
export function growthOf(req: WriteRequest): number {
  switch (req.type) {
    case 'put':
      return req.key.length + req.value.byteLength + OVERHEAD;
    case 'txn': {
      const branch = (ops: readonly RequestOp[]): number =>
        ops.reduce((n, op) => n + (op.op === 'put' ? op.key.length + op.value.byteLength + OVERHEAD : 0), 0);
      return Math.max(branch(req.success), branch(req.failure));
    }
    case 'leaseGrant':
      return OVERHEAD;
    default:
      return 0;
  }
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** The level below which the NOSPACE alarm clears. */
export function clearsBelow(quotaBytes: number): number {
  return Math.floor(quotaBytes * 0.9);
}
