// Read-modify-write on a master whose own copy is behind: the first read is local (no round
// trip), but no answer may be decided on it — a stale copy must never produce a false 404,
// 409 or precondition failure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, findResource, type KubeObject, type ObjectStore, type Pod } from '@flotilla/api';
import { Handlers } from '../src/http/handlers.ts';

const PODS = findResource('', 'v1', 'pods')!;
const admin = { name: 'a', role: 'admin' as const };

function pod(rv: string, uid: string, nodeName?: string): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid, resourceVersion: rv, creationTimestamp: '2026-01-01T00:00:00Z' }, spec: { containers: [{ name: 'c', image: 'x' }], restartPolicy: 'Always', terminationGracePeriodSeconds: 30, schedulerName: 'default-scheduler', ...(nodeName === undefined ? {} : { nodeName }) }, status: { phase: 'Pending' } };
}

/** An object store whose local (serializable) reads return `local`, linearizable ones `latest`. */
function lagging(local: Pod | undefined, latest: Pod): { store: ObjectStore; reads: string[]; writes: KubeObject[] } {
  const reads: string[] = [];
  const writes: KubeObject[] = [];
  const store = {
    get: async (_r: unknown, _ns: unknown, _name: string, serializable = false) => {
      reads.push(serializable ? 'local' : 'linearizable');
      const o = serializable ? local : latest;
      if (o === undefined) throw new ApiError('NotFound', 'pods "p" not found');
      return structuredClone(o);
    },
    update: async (_r: unknown, next: KubeObject, expected: number) => {
      if (expected !== Number(latest.metadata.resourceVersion)) throw new ApiError('Conflict', 'the object has been modified');
      writes.push(next);
      return { ...next, metadata: { ...next.metadata, resourceVersion: String(expected + 1) } };
    },
    delete: async (_r: unknown, _ns: unknown, _name: string, expected: number) => {
      if (expected !== Number(latest.metadata.resourceVersion)) throw new ApiError('Conflict', 'the object has been modified');
      writes.push(latest);
      return expected + 1;
    },
  } as unknown as ObjectStore;
  return { store, reads, writes };
}

test('an update pinned to a resourceVersion this master has not applied yet succeeds after a linearizable read', async () => {
  const f = lagging(pod('5', 'u1'), pod('9', 'u1'));
  const body = { ...pod('9', 'u1'), metadata: { ...pod('9', 'u1').metadata, labels: { a: 'b' } } };
  const updated = await new Handlers(f.store).update(PODS, 'default', 'p', undefined, body, false);
  assert.equal(updated.metadata.labels?.['a'], 'b');
  assert.deepEqual(f.reads, ['local', 'linearizable']);
});

test('an object this master does not have yet is found, not 404', async () => {
  const f = lagging(undefined, pod('3', 'u1'));
  await new Handlers(f.store).bind(PODS, 'default', 'p', { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p', uid: 'u1' }, target: { name: 'w1' } });
  assert.equal((f.writes[0] as Pod).spec.nodeName, 'w1');
  assert.deepEqual(f.reads, ['local', 'linearizable']);
});

test('a binding for the recreated pod is not refused because this master still has the old one', async () => {
  const f = lagging(pod('4', 'old-uid', 'w9'), pod('8', 'new-uid'));
  await new Handlers(f.store).bind(PODS, 'default', 'p', { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p', uid: 'new-uid' }, target: { name: 'w1' } });
  assert.equal((f.writes[0] as Pod).spec.nodeName, 'w1');
});

test('a delete with a uid precondition of the latest object succeeds; a wrong one is refused on the latest state', async () => {
  const f = lagging(pod('4', 'old-uid'), pod('8', 'new-uid'));
  const h = new Handlers(f.store);
  await h.delete(PODS, 'default', 'p', { preconditions: { uid: 'new-uid' } }, admin);
  assert.equal(f.writes.length, 1);
  const g = lagging(pod('4', 'old-uid'), pod('8', 'new-uid'));
  await assert.rejects(new Handlers(g.store).delete(PODS, 'default', 'p', { preconditions: { uid: 'old-uid' } }, admin), (e: ApiError) => e.code === 409 && /UID in object meta: new-uid/.test(e.message));
  assert.deepEqual(g.reads, ['local', 'linearizable'], 'the refusal was decided on a linearizable read');
  assert.equal(g.writes.length, 0);
});

test('when the local copy is current, one local read is all it takes', async () => {
  const f = lagging(pod('9', 'u1'), pod('9', 'u1'));
  await new Handlers(f.store).patch(PODS, 'default', 'p', undefined, 'merge', { metadata: { labels: { x: 'y' } } }, false, admin);
  assert.deepEqual(f.reads, ['local']);
});
