// The durable log on its own: what is saved comes back after reopening, conflicting suffixes
// are replaced, snapshots replace the log, compaction drops what a snapshot covers, and a
// second process cannot open the same directory.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Entry, Snapshot } from '@flotilla/raft';
import { DiskLog, KvError } from '@flotilla/store';

const root = mkdtempSync(join(tmpdir(), 'flotilla-disk-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = (): string => join(root, `d${n++}`);

const entry = (index: number, term: number, text = `${index}@${term}`): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(text) });
const terms = (es: readonly Entry[]): string => es.map((e) => `${e.index}@${e.term}`).join(' ');

test('entries and hard state survive a reopen; a conflicting suffix is replaced', async () => {
  const d = dir();
  const log = await DiskLog.open(d);
  await log.load();
  await log.save({ term: 2, vote: 'm1', commit: 2 }, [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)], undefined, true);
  await log.save(undefined, [entry(3, 3)], undefined, true); // a new leader's entry 3 replaces 3 and 4
  await log.close();
  const again = await DiskLog.open(d);
  const loaded = await again.load();
  assert.deepEqual(loaded.hardState, { term: 2, vote: 'm1', commit: 2 });
  assert.equal(terms(loaded.entries), '1@1 2@1 3@3');
  assert.equal(again.size(), 3);
  await again.close();
});

test('a snapshot from the leader replaces the whole log; compaction drops what a snapshot covers', async () => {
  const d = dir();
  const log = await DiskLog.open(d);
  await log.load();
  await log.save(undefined, [entry(1, 1), entry(2, 1), entry(3, 1)], undefined, true);
  const snap: Snapshot = { metadata: { index: 10, term: 4, confState: { voters: ['m1'], learners: [] } }, data: new Uint8Array([7, 7]) };
  await log.save({ term: 4, vote: '', commit: 10 }, [], snap, true);
  await log.save(undefined, [entry(11, 4), entry(12, 4), entry(13, 4)], undefined, true);
  await log.saveSnapshot({ ...snap, metadata: { ...snap.metadata, index: 12 } });
  await log.compact(11);
  await log.close();
  const again = await DiskLog.open(d);
  const loaded = await again.load();
  assert.equal(loaded.snapshot?.metadata.index, 12);
  assert.deepEqual([...loaded.snapshot!.data], [7, 7]);
  assert.equal(terms(loaded.entries), '13@4', 'entries the snapshot covers are not loaded');
  await again.close();
});

test('a data directory in use by another master is refused with a clear reason', async () => {
  const d = dir();
  const first = await DiskLog.open(d);
  await assert.rejects(DiskLog.open(d), (e: unknown) => e instanceof KvError && e.code === 'unavailable' && /in use by another running master/.test(e.message));
  await first.close();
});
