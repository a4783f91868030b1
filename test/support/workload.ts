// Concurrent clients that write and read a few registers and write once-only keys, recording
// each operation's invocation and completion time and result for the linearizability check.
import { performance } from 'node:perf_hooks';
import { KvClient, isKvError } from '@flotilla/store';
import type { Operation } from './linearizability.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export interface WorkloadOptions {
  readonly endpoints: readonly string[];
  readonly secret: string;
  readonly clients: number;
  readonly registers: number;
}

export interface WorkloadStats {
  ok: number;
  /** Writes whose outcome is unknown (timed out): they may or may not have taken effect. */
  unknown: number;
  failedReads: number;
  /** Completion times of successful writes, for availability figures. */
  readonly writeTimes: number[];
}

export class Workload {
  readonly history: Operation[] = [];
  /** Once-only keys whose put was acknowledged, with their value: none may be missing later. */
  readonly acked = new Map<string, string>();
  readonly stats: WorkloadStats = { ok: 0, unknown: 0, failedReads: 0, writeTimes: [] };
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly clients: KvClient[] = [];

  constructor(private readonly options: WorkloadOptions) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.options.clients; i++) {
      const client = new KvClient({ endpoints: this.options.endpoints, secret: this.options.secret, name: `load-${i}`, timeoutMs: 3000, attemptTimeoutMs: 1000 });
      this.clients.push(client);
      this.loops.push(this.loop(i, client));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    try {
      // A loop that failed fails this (its error is the test's), but the clients close anyway.
      await Promise.all(this.loops);
    } finally {
      for (const c of this.clients) c.close();
    }
  }

  /** One more linearizable read of every register, recorded like the others. */
  async finalReads(endpoints: readonly string[]): Promise<void> {
    const client = new KvClient({ endpoints, secret: this.options.secret, name: 'final', timeoutMs: 10_000 });
    try {
      for (let k = 0; k < this.options.registers; k++) {
        const key = `r${k}`;
        const call = performance.now();
        const res = await client.get(key);
        this.history.push({ client: -1, key, kind: 'read', value: res.kvs[0] === undefined ? null : dec(res.kvs[0].value), call, ret: performance.now() });
      }
    } finally {
      client.close();
    }
  }

  private async loop(id: number, client: KvClient): Promise<void> {
    let n = 0;
    while (this.running) {
      n++;
      const dice = Math.random();
      const key = `r${Math.floor(Math.random() * this.options.registers)}`;
      const call = performance.now();
      if (dice < 0.45) {
        const value = `c${id}-${n}`;
        try {
          await client.put(key, enc(value));
          const ret = performance.now();
          this.history.push({ client: id, key, kind: 'write', value, call, ret });
          this.stats.ok++;
          this.stats.writeTimes.push(ret);
        } catch (err) {
          if (!isKvError(err, 'timeout') && !isKvError(err, 'unavailable')) throw err;
          this.history.push({ client: id, key, kind: 'write', value, call, ret: Infinity });
          this.stats.unknown++;
        }
      } else if (dice < 0.9) {
        try {
          const res = await client.get(key);
          const kv = res.kvs[0];
          this.history.push({ client: id, key, kind: 'read', value: kv === undefined ? null : dec(kv.value), call, ret: performance.now() });
          this.stats.ok++;
        } catch (err) {
          if (!isKvError(err, 'timeout') && !isKvError(err, 'unavailable')) throw err;
          this.stats.failedReads++;
        }
      } else {
        const once = `u/${id}-${n}`;
        try {
          await client.put(once, enc(once));
          this.acked.set(once, once);
          this.stats.ok++;
        } catch (err) {
          if (!isKvError(err, 'timeout') && !isKvError(err, 'unavailable')) throw err;
        }
      }
    }
  }
}
