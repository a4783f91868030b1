// Shared by the agent's package tests: cleanups run after each test (even a failed one), and
// waiting for a condition.
import { afterEach } from 'node:test';

/** Registered cleanups, run in reverse order after each test. */
export const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * Resolves with the first value of `check` (polled every 10 ms) that is not false or
 * undefined; throws after `timeoutMs` naming `what`.
 */
export async function until<T>(what: string, check: () => T | false | undefined | Promise<T | false | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== false && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
