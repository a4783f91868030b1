// The durable log on its own: what is saved comes back after reopening, conflicting suffixes
// are replaced, snapshots replace the log, compaction drops what a snapshot covers, and a
// second process cannot open the same directory.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Entry, Snapshot } from '@flotilla/raft';
import fc from 'fast-check';
import { Level } from 'level';
import { DiskLog, KvError, seal, unseal } from '@flotilla/store';

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

test('a snapshot this master took is stored in pieces, loads back whole, and a damaged or missing piece is refused', async () => {
  const d = dir();
  const log = await DiskLog.open(d);
  await log.load();
  await log.save({ term: 1, vote: '', commit: 3 }, [entry(1, 1), entry(2, 1), entry(3, 1)], undefined, true);
  // 3 MB: six pieces of 512 KiB, each a level write of its own (one 70 MB value held the event
  // loop for 1.0-1.5 s inside level's put).
  const data = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => i % 251);
  const snap: Snapshot = { metadata: { index: 3, term: 1, confState: { voters: ['m1'], learners: [] } }, data };
  await log.saveSnapshot(snap);
  await log.saveSnapshot({ ...snap, metadata: { ...snap.metadata, index: 2 } }); // an older one is never pointed at after a newer
  await log.saveSnapshot(snap);
  await log.close();
  const again = await DiskLog.open(d);
  const loaded = await again.load();
  assert.equal(loaded.snapshot?.metadata.index, 3);
  assert.ok(Buffer.from(loaded.snapshot!.data).equals(Buffer.from(data)));
  await again.close();
  const db = new Level<string, Uint8Array>(join(d, 'raft'), { valueEncoding: 'view' });
  const keys: string[] = [];
  for await (const k of db.keys({ gte: 'd', lt: 'e' })) keys.push(k);
  assert.equal(keys.length, 7, `the pieces of one snapshot only: ${keys.join(' ')}`);
  const piece = (await db.get(keys[2]!))!;
  const damaged = Uint8Array.from(piece);
  damaged[100] = damaged[100]! ^ 1;
  await db.put(keys[2]!, damaged);
  await db.close();
  const third = await DiskLog.open(d);
  await assert.rejects(third.load(), (e: unknown) => e instanceof KvError && /piece 2 of the snapshot at 3\) fails its checksum/.test((e as Error).message));
  await third.close();
  const db2 = new Level<string, Uint8Array>(join(d, 'raft'), { valueEncoding: 'view' });
  await db2.del(keys[2]!);
  await db2.close();
  const fourth = await DiskLog.open(d);
  await assert.rejects(fourth.load(), (e: unknown) => e instanceof KvError && /piece 2 of the snapshot at 3 is missing/.test((e as Error).message));
  await fourth.close();
});

test('a data directory in use by another master is refused with a clear reason', async () => {
  const d = dir();
  const first = await DiskLog.open(d);
  await assert.rejects(DiskLog.open(d), (e: unknown) => e instanceof KvError && e.code === 'unavailable' && /in use by another running master/.test(e.message));
  await first.close();
});

test('the data directory is locked first: a directory another live process holds is refused before anything in it is created', async (t) => {
  const d = dir();
  mkdirSync(d);
  const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  t.after(() => {
    if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
  });
  await new Promise((r) => setTimeout(r, 100));
  const stat = readFileSync(`/proc/${holder.pid}/stat`, 'latin1');
  const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
  writeFileSync(join(d, 'flotilla.lock'), JSON.stringify({ pid: holder.pid, ppid: process.pid, host: hostname(), startTime, by: 'flotilla master', since: new Date().toISOString() }));
  await assert.rejects(DiskLog.open(d), (e: unknown) => e instanceof KvError && e.code === 'unavailable' && new RegExp(`in use by another running master: pid ${holder.pid} \\(flotilla master, since `).test(e.message));
  assert.deepEqual(readdirSync(d), ['flotilla.lock'], 'no database, no mark file: nothing was written');
  holder.kill('SIGKILL');
  await once(holder, 'exit');
  // Its holder is gone: the lock is stale, and this master takes it over.
  const log = await DiskLog.open(d);
  assert.equal(JSON.parse(readFileSync(join(d, 'flotilla.lock'), 'utf8')).pid, process.pid);
  await log.close();
  assert.ok(!existsSync(join(d, 'flotilla.lock')), 'close() releases the lock');
});

test('the directory stays locked while its database is closed and reopened (recover() after a full disk)', async () => {
  const d = dir();
  const first = await DiskLog.open(d);
  await first.load();
  await first.save({ term: 1, vote: '', commit: 0 }, [entry(1, 1)], undefined, true);
  // recover() closes level (releasing LevelDB's own LOCK) before it opens it again.
  await (first as unknown as { db: Level<string, Uint8Array> }).db.close();
  await assert.rejects(DiskLog.open(d), (e: unknown) => e instanceof KvError && e.code === 'unavailable' && /in use by another running master/.test(e.message));
  await first.recover();
  await first.close();
});

/** Each record's value as level holds it, for tests that damage them in place. */
async function rawRecords(path: string): Promise<Map<string, Uint8Array>> {
  const db = new Level<string, Uint8Array>(join(path, 'raft'), { valueEncoding: 'view' });
  const out = new Map<string, Uint8Array>();
  for await (const [k, v] of db.iterator()) out.set(k, new Uint8Array(v)); // a copy: level hands out Buffers, whose slice() shares memory
  await db.close();
  return out;
}

async function putRaw(path: string, key: string, value: Uint8Array): Promise<void> {
  const db = new Level<string, Uint8Array>(join(path, 'raft'), { valueEncoding: 'view' });
  await db.put(key, value);
  await db.close();
}

test('every record carries a checksum: one changed byte in any record stops the load with the record named', async () => {
  const d = dir();
  const log = await DiskLog.open(d);
  await log.load();
  await log.save({ term: 2, vote: 'm1', commit: 2 }, [entry(1, 1), entry(2, 2, 'a value')], undefined, true);
  await log.writeRecord('identity', { member: 'm1' });
  await log.close();
  const records = await rawRecords(d);
  assert.deepEqual([...records.keys()].sort(), ['e0000000000000001', 'e0000000000000002', 'hardstate', 'identity']);
  for (const [key, value] of records) {
    for (const at of [1, 3, value.byteLength - 1]) {
      const damaged = new Uint8Array(value);
      damaged[at] = damaged[at]! ^ 0x10;
      await putRaw(d, key, damaged);
      const again = await DiskLog.open(d);
      await assert.rejects(again.load(), (e: unknown) => e instanceof KvError && e.code === "corrupt" && e.message.includes(key) && e.message.includes(join(d, 'raft')) && /add it back with an empty data directory/.test(e.message), `${key} byte ${at}`);
      await again.close();
    }
    await putRaw(d, key, value);
  }
  const whole = await DiskLog.open(d);
  assert.equal((await whole.load()).entries.length, 2, 'undamaged again, it loads');
  await whole.close();
});

test('a record stored under another entry\'s key, or a missing entry, is refused as damage', async () => {
  const d = dir();
  const log = await DiskLog.open(d);
  await log.load();
  await log.save(undefined, [entry(1, 1), entry(2, 1), entry(3, 1)], undefined, true);
  await log.close();
  const records = await rawRecords(d);
  await putRaw(d, 'e0000000000000002', records.get('e0000000000000003')!);
  const again = await DiskLog.open(d);
  await assert.rejects(again.load(), (e: unknown) => e instanceof KvError && e.code === 'corrupt' && /holds entry 3/.test(e.message));
  await again.close();
});

test('a data directory written before checksums is refused with what to do', async () => {
  const d = dir();
  await putRaw(d, 'hardstate', new Uint8Array([0x83, 0xa4, 0x74, 0x65, 0x72, 0x6d, 0x01]));
  const log = await DiskLog.open(d);
  await assert.rejects(log.load(), (e: unknown) => e instanceof KvError && e.code === 'wrong-data-dir' && /earlier version of Flotilla/.test(e.message) && /--fresh/.test(e.message));
  await log.close();
});

test('seal and unseal: any changed byte, and any unsealed value, is told apart from a sound one', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (payload, at, flip) => {
      const sealed = seal(3, payload);
      const r = unseal(sealed);
      assert.ok(typeof r === 'object' && r.kind === 3 && Buffer.from(r.payload).equals(Buffer.from(payload)));
      const damaged = sealed.slice();
      const i = at % damaged.byteLength;
      damaged[i] = damaged[i]! ^ flip;
      assert.notEqual(typeof unseal(damaged), 'object', `byte ${i} changed`);
    }),
  );
  assert.equal(unseal(new Uint8Array([0x82, 1, 2])), 'unsealed');
});
