// Issue 11, 5: full stores and full disks. The quota keeps the store from filling its disk: a
// write that would pass it is refused with NOSPACE while reads, deletes and compactions go on,
// and writes work again once space was freed. A master whose disk does fill (something else
// filled it) loses nothing it acknowledged, answers no requests while it retries, says why, and
// goes on by itself when space returns; with a majority full the cluster says so, and recovers.
// The full-disk tests mount a small tmpfs per master, so they need root.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { KvError, type KvClient } from '@flotilla/store';
import { TestCluster, dec, enc, eventually, sleep } from './support.ts';

const ids = ['m1', 'm2', 'm3'];
const root = process.getuid?.() === 0;
const NEEDS_ROOT = root ? false : 'needs root, to mount a small tmpfs per master (run as root, as CI does)';

test('issue 11, 5: past the quota, writes that add data are refused with NOSPACE; reads, deletes and compaction work, and writes come back', async (t) => {
  const c = await TestCluster.start(ids, { quotaBytes: 256 * 1024 });
  t.after(() => c.stop());
  await c.leader();
  const client = c.client();
  const value = new Uint8Array(16 * 1024).fill(7);
  let stored = 0;
  let refusal: KvError | undefined;
  for (let i = 0; i < 100 && refusal === undefined; i++) {
    try {
      await client.put(`q${i}`, value);
      stored++;
    } catch (err) {
      if (!(err instanceof KvError)) throw err;
      refusal = err;
    }
  }
  assert.ok(refusal !== undefined && refusal.code === 'no-space', String(refusal));
  assert.match(refusal.message, /database space exceeded \(NOSPACE\).*quota.*delete keys and compact/);
  assert.ok(stored >= 10 && stored < 20, `${stored} values of 16 KiB fit in 256 KiB`);
  assert.ok(c.running().some((n) => n.status().alarms.some((a) => a.type === 'NOSPACE')));
  // Reads and deletes work; so does a lease keep-alive and a compaction.
  assert.equal((await client.get('q0')).kvs[0]?.value.byteLength, value.byteLength);
  await assert.rejects(client.put('more', enc('x')), (e: unknown) => e instanceof KvError && e.code === 'no-space');
  const deleted = await client.delete({ key: 'q', prefix: true });
  assert.equal(deleted.deleted, stored);
  await client.compact(deleted.revision);
  await eventually(() => c.running().every((n) => n.status().alarms.length === 0 && n.status().dbSizeBytes === 0), 'NOSPACE clears everywhere once compacted');
  await client.put('again', enc('fits'));
  assert.equal(dec((await client.get('again')).kvs[0]!.value), 'fits');
});

/** Mounts a tmpfs of `mb` MiB on each member's data directory; returns the unmount. */
function mountTmpfs(c: TestCluster, mb: number): () => void {
  const mounted: string[] = [];
  for (const m of c.members.values()) {
    mkdirSync(m.dataDir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m`, 'tmpfs', m.dataDir]);
    mounted.push(m.dataDir);
  }
  return () => {
    for (const d of mounted) execFileSync('umount', ['-l', d]);
  };
}

/** Fills a master's disk to the last byte (dd stops at ENOSPC). */
function fill(dir: string): void {
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${join(dir, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
  } catch {
    // dd exits non-zero when the disk is full: that was the point
  }
  // What a partly filled page leaves, too.
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(dir, `crumb${i}`), Buffer.alloc(512));
    } catch {
      return;
    }
  }
}

function free(dir: string): void {
  execFileSync('sh', ['-c', `rm -f ${join(dir, 'filler')} ${join(dir, 'crumb')}*`]);
}

async function fullDiskCluster(t: { after: (fn: () => Promise<void>) => void }): Promise<{ c: TestCluster; fatal: string[] }> {
  const c = await TestCluster.start([], { hashCheckMs: 200 });
  for (const id of ids) await c.define(id);
  const unmount = mountTmpfs(c, 24);
  t.after(async () => {
    for (const id of ids) await c.stopMember(id);
    unmount();
    await c.stop();
  });
  await Promise.all(ids.map((id) => c.startMember(id)));
  const fatal: string[] = [];
  for (const n of c.running()) n.on('fatal', (e) => fatal.push(`${n.id}: ${e.message}`));
  await c.leader();
  return { c, fatal };
}

async function putAll(client: KvClient, prefix: string, n: number, acked: Map<string, string>): Promise<void> {
  for (let i = 0; i < n; i++) {
    const v = `${prefix}-${i}-${'x'.repeat(2000)}`;
    await client.put(`${prefix}${i}`, enc(v));
    acked.set(`${prefix}${i}`, v);
  }
}

test('issue 11, 5: a follower whose disk fills answers nothing and says why, loses nothing, and goes on by itself when space returns', { skip: NEEDS_ROOT }, async (t) => {
  const { c, fatal } = await fullDiskCluster(t);
  const leader = await c.leader();
  const victim = ids.find((id) => id !== leader.id)!;
  const client = c.client({ timeoutMs: 5000 });
  const acked = new Map<string, string>();
  await putAll(client, 'a', 50, acked);
  fill(c.members.get(victim)!.dataDir);
  // The other two commit on their own.
  await putAll(client, 'b', 50, acked);
  const node = c.node(victim);
  await eventually(() => node.status().alarms.some((a) => a.type === 'DISKFULL'), 'the victim raises DISKFULL', 5000);
  assert.equal(node.status().serving, false);
  assert.match(node.status().notServing ?? '', /cannot write to its disk.*No space left on device/);
  await assert.rejects(node.range({ key: 'a0' }), (e: unknown) => e instanceof KvError && e.code === 'unavailable' && /disk/.test(e.message));
  free(c.members.get(victim)!.dataDir);
  await c.converged(15_000);
  assert.deepEqual(node.status().alarms, []);
  for (const [k, v] of acked) assert.equal(dec((await node.range({ key: k })).kvs[0]!.value), v, k);
  assert.deepEqual(fatal, [], 'no master stopped');
});

test('issue 11, 5: with the disks of a majority full the cluster says so and takes no writes; freeing space brings it back with nothing lost', { skip: NEEDS_ROOT }, async (t) => {
  const { c, fatal } = await fullDiskCluster(t);
  const client = c.client({ timeoutMs: 4000 });
  const acked = new Map<string, string>();
  await putAll(client, 'a', 50, acked);
  const leader = await c.leader();
  const full = [leader.id, ids.find((id) => id !== leader.id)!];
  for (const id of full) fill(c.members.get(id)!.dataDir);
  // Writes keep being tried, as clients would, until they are refused with a reason.
  let said = '';
  for (let i = 0; i < 20 && !/majority of the masters\) are full/.test(said); i++) {
    said = await client.put(`during${i}`, new Uint8Array(20_000)).then(
      () => 'ok',
      (err: Error) => err.message,
    );
    await sleep(100);
  }
  assert.match(said, /the disks of m\d, m\d \(a majority of the masters\) are full/);
  for (const id of full) assert.ok(c.node(id).status().alarms.some((a) => a.type === 'DISKFULL'), id);
  for (const id of full) free(c.members.get(id)!.dataDir);
  await eventually(() => c.running().every((n) => n.status().alarms.length === 0), 'the full masters go on by themselves', 15_000);
  await c.leader(15_000);
  await client.put('after', enc('back'));
  await c.converged(15_000);
  for (const n of c.running()) {
    assert.deepEqual(n.status().alarms, [], n.id);
    for (const [k, v] of acked) assert.equal(dec((await n.range({ key: k })).kvs[0]!.value), v, `${n.id} ${k}`);
    assert.equal(dec((await n.range({ key: 'after' })).kvs[0]!.value), 'back');
  }
  assert.deepEqual(fatal, [], 'no master stopped');
});

test('a full disk at start is said in one sentence, and the master starts once there is space', { skip: NEEDS_ROOT }, async (t) => {
  const c = await TestCluster.start([]);
  for (const id of ['m1']) await c.define(id);
  const unmount = mountTmpfs(c, 2);
  t.after(async () => {
    await c.stopMember('m1');
    unmount();
    await c.stop();
  });
  fill(c.members.get('m1')!.dataDir);
  await assert.rejects(c.startMember('m1'), (e: unknown) => e instanceof KvError && /disk is full/.test(e.message));
  free(c.members.get('m1')!.dataDir);
  rmSync(join(c.members.get('m1')!.dataDir, 'raft'), { recursive: true, force: true });
  await c.startMember('m1');
  await c.leader();
});
