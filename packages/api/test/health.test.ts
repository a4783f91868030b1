// /livez, /readyz and /healthz say whether this master's store serves, as kube-apiserver's do
// for etcd; and a full store (NOSPACE) turns writes into a clear Status while reads go on.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { startTestApi } from '@flotilla/api/testing';

function get(port: number, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

test('readyz is ok while the store serves, says NOSPACE when the quota is reached, and fails once the store does not serve', async (t) => {
  const api = await startTestApi({ quotaBytes: 1024 * 1024 });
  t.after(() => api.stop());
  const { port } = api.server.address();
  assert.deepEqual(await get(port, '/readyz'), { status: 200, text: 'ok' });
  assert.match((await get(port, '/readyz?verbose')).text, /^\[\+\]ping ok\n\[\+\]store ok\nreadyz check passed\n$/);
  // Fill the store through the API (events are the least checked kind).
  let refused: string | undefined;
  for (let i = 0; i < 200 && refused === undefined; i++) {
    try {
      await api.client.create('events', { apiVersion: 'v1', kind: 'Event', metadata: { name: `e${i}`, namespace: 'default' }, involvedObject: { kind: 'Pod', name: 'p' }, reason: 'Fill', message: 'x'.repeat(60_000) } as never);
    } catch (err) {
      refused = (err as Error).message;
    }
  }
  assert.match(refused ?? '', /database space exceeded \(NOSPACE\)/);
  const ready = await get(port, '/readyz');
  assert.equal(ready.status, 200, 'reads and deletes are still served');
  assert.match(ready.text, /store alarm NOSPACE: the store's data reached its quota/);
  assert.equal((await api.client.list('events', 'default')).items.length > 0, true);
  await api.node.close();
  const down = await get(port, '/readyz');
  assert.equal(down.status, 503);
  assert.match(down.text, /\[-\]store failed: this master is shutting down\n(.*\n)*readyz check failed\n$/);
  assert.equal((await get(port, '/healthz')).status, 503);
  assert.equal((await get(port, '/livez')).status, 200, 'the process itself is alive');
});
