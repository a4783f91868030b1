/**
 * Polls `check` (every 100 ms) until it returns a value other than undefined/false, and returns
 * that value; after `timeoutMs` throws, naming what was awaited and the last error seen.
 */
export async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}${last === undefined ? '' : ` (last error: ${(last as Error).message})`}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
