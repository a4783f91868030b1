// The pacer: bulk work of many requests at once takes about one slice per turn of the event
// loop, whoever's it is. On a fake clock (each piece of "work" advances it 1 ms), so what is
// counted is pieces per turn, not real time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPacer } from '@flotilla/wire';

/**
 * Runs `flows` flows of `pieces` pieces each, every piece asking `wait()` first; returns the
 * most pieces done in one turn of the loop (between two runs of a check callback, which runs
 * once a turn; on the fake clock a turn takes no real time, so a timer would span several).
 */
async function mostPiecesPerTurn(flows: number, pieces: number, wait: (clock: { t: number }) => Promise<void> | undefined): Promise<number> {
  const clock = { t: 0 };
  let sinceTick = 0;
  let most = 0;
  let running = true;
  const tick = (): void => {
    most = Math.max(most, sinceTick);
    sinceTick = 0;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  await Promise.all(
    Array.from({ length: flows }, async () => {
      for (let i = 0; i < pieces; i++) {
        const w = wait(clock);
        if (w !== undefined) await w;
        clock.t += 1;
        sinceTick++;
      }
    }),
  );
  running = false;
  return Math.max(most, sinceTick);
}

test('twenty flows of bulk work share the turns: about one 10 ms slice per turn', async () => {
  let pacer: ReturnType<typeof createPacer> | undefined;
  const most = await mostPiecesPerTurn(20, 100, (clock) => {
    pacer ??= createPacer(() => clock.t, 10);
    return pacer.pace();
  });
  assert.ok(most <= 20, `${most} pieces (ms) ran in one turn`);
});

test('the check catches flows that only yield between their own chunks (what scan did)', async () => {
  // Each flow yields (setImmediate) after 10 pieces: every flow's chunk lands in the same turn.
  const most = await mostPiecesPerTurn(20, 100, (clock) => (clock.t % 10 === 0 ? new Promise((r) => setImmediate(r)) : undefined));
  assert.ok(most >= 100, `${most} pieces ran in one turn`);
});
