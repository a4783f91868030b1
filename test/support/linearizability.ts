// A linearizability checker for key-value histories, in the style of Porcupine: the history
// is split per key (a register per key is linearizable iff the whole is, for single-key
// operations), and each key is searched with the Wing–Gong algorithm as improved by Lowe
// (WGL): linearize call events depth-first, undo on a failed return, and memoize every
// (set of linearized operations, register state) already explored.

/** One operation as a client saw it. `ret` is Infinity when the outcome is unknown (timeout). */
export interface Operation {
  readonly client: number;
  readonly key: string;
  readonly kind: 'write' | 'read';
  /** The value written, or the value the read returned (null: the key did not exist). */
  readonly value: string | null;
  readonly call: number;
  readonly ret: number;
}

export type CheckResult =
  | { readonly ok: true; readonly keys: number; readonly operations: number }
  | { readonly ok: false; readonly key: string; readonly reason: string; readonly operations: readonly Operation[] };

interface Event {
  readonly op: number;
  readonly isCall: boolean;
  readonly time: number;
  match: Event | undefined;
  prev: Event | undefined;
  next: Event | undefined;
}

/** Checks one register's history. Returns undefined when linearizable, else a reason. */
export function checkRegister(ops: readonly Operation[], budgetMs = 30_000): string | undefined {
  if (ops.length === 0) return undefined;
  if (ops.length > 30_000) return `too many operations on one key (${ops.length}) to check`;
  // Events in time order; a return before a call at the same instant (the stricter reading).
  const events: Event[] = [];
  ops.forEach((o, i) => {
    const call: Event = { op: i, isCall: true, time: o.call, match: undefined, prev: undefined, next: undefined };
    const ret: Event = { op: i, isCall: false, time: o.ret, match: call, prev: undefined, next: undefined };
    call.match = ret;
    events.push(call, ret);
  });
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? 1 : -1));
  const head: Event = { op: -1, isCall: false, time: -Infinity, match: undefined, prev: undefined, next: undefined };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }

  const lift = (call: Event): void => {
    call.prev!.next = call.next;
    if (call.next !== undefined) call.next.prev = call.prev;
    const ret = call.match!;
    ret.prev!.next = ret.next;
    if (ret.next !== undefined) ret.next.prev = ret.prev;
  };
  const unlift = (call: Event): void => {
    const ret = call.match!;
    ret.prev!.next = ret;
    if (ret.next !== undefined) ret.next.prev = ret;
    call.prev!.next = call;
    if (call.next !== undefined) call.next.prev = call;
  };

  const words = Math.ceil(ops.length / 32);
  const linearized = new Uint32Array(words);
  const seen = new Set<string>();
  const stack: { call: Event; state: string | null }[] = [];
  let state: string | null = null;
  let entry = head.next;
  const started = Date.now();
  let steps = 0;
  while (head.next !== undefined) {
    if (++steps % 10_000 === 0 && Date.now() - started > budgetMs) return `the search gave up after ${budgetMs} ms (${ops.length} operations)`;
    if (entry === undefined) return 'internal error: ran off the event list';
    if (entry.isCall) {
      const op = ops[entry.op]!;
      const legal = op.kind === 'write' || op.value === state;
      if (legal) {
        const next: string | null = op.kind === 'write' ? op.value : state;
        linearized[entry.op >>> 5]! |= 1 << (entry.op & 31);
        const key = `${linearized.join(',')}|${next}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ call: entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[entry.op >>> 5]! &= ~(1 << (entry.op & 31));
      }
      entry = entry.next;
    } else {
      // A return whose call could not be linearized before it: backtrack.
      const top = stack.pop();
      if (top === undefined) {
        const op = ops[entry.op]!;
        return `no order of the operations explains ${op.kind === 'read' ? `a read of ${JSON.stringify(op.value)}` : `the write of ${JSON.stringify(op.value)}`} by client ${op.client} that returned at ${op.ret}`;
      }
      state = top.state;
      linearized[top.call.op >>> 5]! &= ~(1 << (top.call.op & 31));
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return undefined;
}

/** Checks a whole key-value history, key by key. */
export function checkHistory(history: readonly Operation[], budgetMs = 60_000): CheckResult {
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    const list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, [op]);
    else list.push(op);
  }
  for (const [key, ops] of byKey) {
    const reason = checkRegister(ops, budgetMs);
    if (reason !== undefined) return { ok: false, key, reason, operations: ops };
  }
  return { ok: true, keys: byKey.size, operations: history.length };
}
