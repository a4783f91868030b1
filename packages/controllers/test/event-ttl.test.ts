// Events expire after a TTL (Kubernetes' --event-ttl, 1 h by default), counted from their last
// write (the latest of lastTimestamp, eventTime, firstTimestamp and creationTimestamp, as a
// Kubernetes event's etcd lease is renewed by every write), against the real API on a real
// store with a short TTL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiError, encodeObject, InformerFactory, type ApiClient, type Event } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';
import { silentLogger } from '@flotilla/wire';
import * as controllers from '@flotilla/controllers';

// (Looked up, not imported by name, so that on a commit without them the tests run and fail.)
const { DEFAULT_EVENT_TTL_MS, EventTTLController } = controllers as Partial<typeof controllers>;

const TTL_MS = 1500;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function exists(client: ApiClient, name: string): Promise<boolean> {
  try {
    await client.get('events', 'default', name);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'NotFound') return false;
    throw err;
  }
}

function event(name: string, fields: Partial<Event> & { eventTime?: string }): Event {
  return { apiVersion: 'v1', kind: 'Event', metadata: { name, namespace: 'default' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'default' }, reason: 'Started', message: 'started', type: 'Normal', ...fields } as Event;
}

const iso = (ms: number): string => new Date(ms).toISOString();

describe('event TTL', () => {
  let api: TestApi;
  let c: ApiClient;
  let stop: (() => void) | undefined;
  before(async () => {
    api = await startTestApi();
    c = api.client;
    assert.ok(EventTTLController !== undefined, 'this commit has no event TTL controller');
    const informers = new InformerFactory(c, silentLogger);
    const controller = new EventTTLController({ client: c, informers, logger: silentLogger, now: Date.now }, { ttlMs: TTL_MS });
    await informers.start();
    controller.start();
    stop = () => {
      controller.stop();
      informers.stop();
    };
  });
  after(async () => {
    stop?.();
    await api.stop();
  });

  test('the default TTL is Kubernetes\' hour', () => {
    assert.equal(DEFAULT_EVENT_TTL_MS, 3_600_000);
    assert.equal(new EventTTLController!({ client: c, informers: new InformerFactory(c), logger: silentLogger, now: Date.now }).ttlMs, 3_600_000);
  });

  /** An event as the store holds one written `agoMs` ago (through the API it would be dated now). */
  async function seed(name: string, agoMs: number, fields: Partial<Event> & { eventTime?: string }): Promise<void> {
    const e = event(name, fields);
    e.metadata = { ...e.metadata, uid: `uid-${name}`, creationTimestamp: iso(Date.now() - agoMs).replace(/\.\d{3}Z$/, 'Z'), generation: 1 };
    await api.node.write({ type: 'put', key: `/registry/events/default/${name}`, value: encodeObject(e) });
  }

  test('events last written longer ago than the TTL are deleted; one written again since is kept', async () => {
    const now = Date.now();
    await seed('old', 7_200_000, { firstTimestamp: iso(now - 7_200_000), lastTimestamp: iso(now - 7_200_000) });
    await seed('old-micro', 7_200_000, { eventTime: iso(now - 7_200_000) });
    await seed('old-bare', 7_200_000, {});
    await seed('renewed', 7_200_000, { count: 5, firstTimestamp: iso(now - 7_200_000), lastTimestamp: iso(now) });
    for (const name of ['old', 'old-micro', 'old-bare']) await until(`${name} is deleted`, async () => !(await exists(c, name)), 3000);
    assert.ok(Date.now() - now < TTL_MS, 'expired ones go at once, not after a TTL');
    assert.ok(await exists(c, 'renewed'), 'dated by its lastTimestamp, not its creation');
    await until('the renewed event expires', async () => !(await exists(c, 'renewed')), TTL_MS + 3000);
  });

  test('a new event lives out its TTL, then goes', async () => {
    const now = Date.now();
    await c.create('events', event('fresh', { firstTimestamp: iso(now), lastTimestamp: iso(now) }));
    await new Promise((r) => setTimeout(r, TTL_MS / 3));
    assert.ok(await exists(c, 'fresh'), 'still there before its TTL ran out');
    await until('the fresh event expires', async () => !(await exists(c, 'fresh')), TTL_MS + 3000);
    assert.ok(Date.now() - now >= TTL_MS - 50, `gone after ${Date.now() - now} ms, not before its TTL`);
  });

  test('an event written again (count, lastTimestamp) lives a TTL from that write', async () => {
    const t0 = Date.now();
    const e = await c.create<Event>('events', event('repeated', { count: 1, firstTimestamp: iso(t0), lastTimestamp: iso(t0) }));
    await new Promise((r) => setTimeout(r, TTL_MS / 2));
    await c.update('events', { ...e, count: 2, lastTimestamp: iso(Date.now()) });
    await new Promise((r) => setTimeout(r, TTL_MS * 0.75));
    assert.ok(await exists(c, 'repeated'), 'kept past the deadline of its first write');
    await until('the repeated event expires', async () => !(await exists(c, 'repeated')), TTL_MS + 3000);
  });

  test('lastWritten takes the latest usable time (what the last write set)', async () => {
    const { lastWritten } = await import('../src/event-ttl.ts');
    const base = { apiVersion: 'v1', kind: 'Event', involvedObject: {} } as const;
    assert.equal(lastWritten({ ...base, metadata: { creationTimestamp: '2026-01-01T00:00:00Z' }, lastTimestamp: '2026-01-01T01:00:00Z' }), Date.parse('2026-01-01T01:00:00Z'));
    assert.equal(lastWritten({ ...base, metadata: { creationTimestamp: '2026-01-01T02:00:00Z' }, lastTimestamp: '2026-01-01T01:00:00Z' }), Date.parse('2026-01-01T02:00:00Z'));
    assert.equal(lastWritten({ ...base, metadata: { creationTimestamp: '2026-01-01T00:00:00Z' }, lastTimestamp: 'garbage' }), Date.parse('2026-01-01T00:00:00Z'));
    assert.equal(lastWritten({ ...base, metadata: {} }), undefined);
  });
});
