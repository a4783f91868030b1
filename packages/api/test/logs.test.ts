// Pod logs through the API: two API servers on one store (masters A and B, each other's peer),
// real AgentClients joined as nodes with a fake runtime behind their `logs` option, and a raw
// WebSocket agent that sends malformed frames. Checks what reaches the agent, what the HTTP
// client gets (text, Status codes, chunked streaming), cancellation both ways, the per-agent
// stream bound, and forwarding to the master the agent is connected to.
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { AgentClient, ApiServer, Authenticator, hashToken, type LogRequest, type LogSink, type Pod } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';
import { CLOSE, Dialer, silentLogger, type Frame, type WireConnection } from '@flotilla/wire';

const ADMIN = 'admin-token-0123456789';
const VIEWER = 'viewer-token-0123456789';
const nodeToken = (node: string): string => `node-token-of-${node}-0123456789`;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A GET that is read as it streams: `text` grows, `done` resolves at the end, abort() leaves. */
function open(base: string, path: string, token = ADMIN, headers: Record<string, string> = {}): { readonly text: () => string; readonly head: Promise<Answer>; readonly done: Promise<Answer>; abort(): void } {
  let text = '';
  let settleHead!: (a: Answer) => void;
  let settleDone!: (a: Answer) => void;
  let fail!: (e: Error) => void;
  const head = new Promise<Answer>((resolve) => (settleHead = resolve));
  const done = new Promise<Answer>((resolve, reject) => {
    settleDone = resolve;
    fail = reject;
  });
  const req = request(new URL(path, base), { agent: false, headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
    settleHead({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
    res.setEncoding('utf8');
    res.on('data', (c: string) => (text += c));
    res.on('end', () => settleDone({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    res.on('error', (e) => fail(e));
  });
  req.on('error', (e) => fail(e));
  req.end();
  done.catch(() => undefined); // an abort is not a failure of the test
  return { text: () => text, head, done, abort: () => req.destroy() };
}

const get = (base: string, path: string, token = ADMIN, headers: Record<string, string> = {}): Promise<Answer> => open(base, path, token, headers).done;

/** The Status in an error answer. */
function status(a: Answer): { code: number; reason?: string; message: string } {
  assert.equal(a.headers['content-type'], 'application/json', `a Status, not ${a.body}`);
  return JSON.parse(a.body) as { code: number; reason?: string; message: string };
}

/** A runtime's logs(), scripted by the test: records requests and cancels. */
function fakeRuntime(): { handler: (r: LogRequest, s: LogSink) => () => void; requests: LogRequest[]; cancelled: LogRequest[]; sinks: LogSink[]; behave: (r: LogRequest, s: LogSink) => void } {
  const f = {
    requests: [] as LogRequest[],
    cancelled: [] as LogRequest[],
    sinks: [] as LogSink[],
    behave: (r: LogRequest, s: LogSink): void => {
      s.data(new TextEncoder().encode(`${r.pod}/${r.container}: line 1\n`));
      s.data(new TextEncoder().encode('line 2\n'));
      s.end();
    },
    handler: (r: LogRequest, s: LogSink): (() => void) => {
      f.requests.push(r);
      f.sinks.push(s);
      f.behave(r, s);
      return () => f.cancelled.push(r);
    },
  };
  return f;
}

/** Holds the stream open: the test writes into f.sinks. */
const hold = (): void => undefined;

describe('pod logs', () => {
  let api: TestApi;
  let a: ApiServer;
  let b: ApiServer;
  let urlA = '';
  let urlB = '';
  let w1: AgentClient;
  const runtime = fakeRuntime();
  const pods = new Map<string, Pod>();

  before(async () => {
    api = await startTestApi();
    const auth = new Authenticator([
      { name: 'admin', token: ADMIN, role: 'admin' },
      { name: 'viewer', token: VIEWER, role: 'viewer' },
    ]);
    for (const n of ['w1', 'w2', 'w4']) auth.setNodeToken(n, hashToken(nodeToken(n)));
    a = await ApiServer.start({ node: api.node, host: '127.0.0.1', port: 0, authenticator: auth, logger: silentLogger, peers: () => [urlB] });
    b = await ApiServer.start({ node: api.node, host: '127.0.0.1', port: 0, authenticator: auth, logger: silentLogger, peers: () => [urlA] });
    urlA = `http://127.0.0.1:${a.address().port}`;
    urlB = `http://127.0.0.1:${b.address().port}`;
    const pod = (name: string, node: string, containers: string[]): Pod => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default' },
      spec: { ...(node === '' ? {} : { nodeName: node }), containers: containers.map((c) => ({ name: c, image: 'process', command: ['sleep', '100'] })) },
    });
    for (const p of [pod('one', 'w1', ['c']), pod('two', 'w1', ['a', 'b']), pod('far', 'w3', ['c']), pod('quiet', 'w2', ['c']), pod('raw', 'w4', ['c']), pod('pending', '', ['c'])]) {
      pods.set(p.metadata.name!, await api.client.create('pods', p));
    }
    w1 = new AgentClient({ apiUrls: [urlA], token: nodeToken('w1'), logs: runtime.handler });
    await until('w1 is connected to A', () => a.agents.nodes().includes('w1'));
  });

  after(async () => {
    w1?.close();
    await a?.close();
    await b?.close();
    await api?.stop();
  });

  test('a plain read is streamed as chunked text/plain; the agent gets the pod, uid and container', async () => {
    runtime.behave = fakeRuntime().behave;
    const answer = await get(urlA, '/api/v1/namespaces/default/pods/one/log');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-type'], 'text/plain');
    assert.equal(answer.headers['transfer-encoding'], 'chunked');
    assert.equal(answer.body, 'one/c: line 1\nline 2\n');
    assert.deepEqual(runtime.requests.at(-1), { namespace: 'default', pod: 'one', uid: pods.get('one')!.metadata.uid, container: 'c', follow: false, previous: false });
    // A viewer may read logs too.
    assert.equal((await get(urlA, '/api/v1/namespaces/default/pods/one/log', VIEWER)).status, 200);
  });

  test('tailLines, limitBytes, sinceSeconds (or sinceTime) and previous reach the agent; malformed ones are 400', async () => {
    const answer = await get(urlA, '/api/v1/namespaces/default/pods/one/log?container=c&tailLines=5&limitBytes=100&sinceSeconds=30&previous=true');
    assert.equal(answer.status, 200);
    assert.deepEqual(runtime.requests.at(-1), { namespace: 'default', pod: 'one', uid: pods.get('one')!.metadata.uid, container: 'c', follow: false, previous: true, tailLines: 5, limitBytes: 100, sinceSeconds: 30 });
    // sinceTime (kubectl logs --since-time) becomes sinceSeconds.
    const since = new Date(Date.now() - 120_000).toISOString();
    assert.equal((await get(urlA, `/api/v1/namespaces/default/pods/one/log?sinceTime=${since}`)).status, 200);
    const sinceSeconds = runtime.requests.at(-1)!.sinceSeconds!;
    assert.ok(sinceSeconds >= 120 && sinceSeconds < 180, String(sinceSeconds));
    const asked = runtime.requests.length;
    for (const [query, message] of [
      ['sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z', /at most one of `sinceTime` or `sinceSeconds`/],
      ['sinceTime=yesterday', /sinceTime must be an RFC 3339 time/],
      ['timestamps=true', /timestamps=true is not supported/],
      ['tailLines=-1', /tailLines must be greater than or equal to 0/],
      ['tailLines=ten', /tailLines must be an integer/],
      ['limitBytes=0', /limitBytes must be greater than 0/],
      ['sinceSeconds=0', /sinceSeconds must be greater than 0/],
      ['sinceSeconds=1.5', /sinceSeconds must be an integer/],
      ['follow=maybe', /follow must be true or false/],
      ['previous=2', /previous must be true or false/],
    ] as const) {
      const bad = await get(urlA, `/api/v1/namespaces/default/pods/one/log?${query}`);
      assert.equal(bad.status, 400, query);
      assert.match(status(bad).message, message);
    }
    assert.equal(runtime.requests.length, asked, 'nothing malformed reached the agent');
    const notOnNode = await get(urlA, '/api/v1/namespaces/default/pods/pending/log');
    assert.equal(notOnNode.status, 400);
    assert.match(status(notOnNode).message, /not assigned to a node yet/);
    assert.equal((await get(urlA, '/api/v1/namespaces/default/pods/nope/log')).status, 404);
  });

  test('an error from the agent becomes a Status with its code', async () => {
    runtime.behave = (r, s) => s.end({ code: 400, message: `previous terminated container "${r.container}" in pod "${r.pod}" not found` });
    const answer = await get(urlA, '/api/v1/namespaces/default/pods/one/log?previous=true');
    assert.equal(answer.status, 400);
    const st = status(answer);
    assert.equal(st.code, 400);
    assert.equal(st.reason, 'BadRequest');
    assert.equal(st.message, 'previous terminated container "c" in pod "one" not found');
    // A code without a Kubernetes reason keeps its code.
    runtime.behave = (_r, s) => s.end({ code: 502, message: 'the runtime is gone' });
    assert.equal((await get(urlA, '/api/v1/namespaces/default/pods/one/log')).status, 502);
  });

  test('a pod with several containers needs one named; an unknown name is 400', async () => {
    runtime.behave = fakeRuntime().behave;
    const none = await get(urlA, '/api/v1/namespaces/default/pods/two/log');
    assert.equal(none.status, 400);
    assert.equal(status(none).message, 'a container name must be specified for pod two, choose one of: [a b]');
    const unknown = await get(urlA, '/api/v1/namespaces/default/pods/two/log?container=z');
    assert.equal(unknown.status, 400);
    assert.equal(status(unknown).message, 'container z is not valid for pod two');
    const ok = await get(urlA, '/api/v1/namespaces/default/pods/two/log?container=b');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'two/b: line 1\nline 2\n');
  });

  test("a node credential cannot read another node's pod logs", async () => {
    const asked = runtime.requests.length;
    const answer = await get(urlA, '/api/v1/namespaces/default/pods/one/log', nodeToken('w2'));
    assert.equal(answer.status, 403);
    assert.match(status(answer).message, /system:node:w2/);
    assert.equal(runtime.requests.length, asked);
  });

  test('follow streams chunks as they come; the agent sees the cancel when the client leaves', async () => {
    runtime.behave = hold;
    const asked = runtime.requests.length;
    const reader = open(urlA, '/api/v1/namespaces/default/pods/one/log?follow=true');
    await until('the agent is asked', () => runtime.requests.length === asked + 1);
    assert.equal(runtime.requests.at(-1)!.follow, true);
    const sink = runtime.sinks.at(-1)!;
    sink.data(new TextEncoder().encode('first\n'));
    const head = await reader.head;
    assert.equal(head.status, 200);
    await until('the first chunk arrives', () => reader.text() === 'first\n');
    sink.data(new TextEncoder().encode('second\n'));
    await until('the second chunk arrives', () => reader.text() === 'first\nsecond\n');
    const cancels = runtime.cancelled.length;
    reader.abort();
    await until('the agent sees the cancel', () => runtime.cancelled.length === cancels + 1);
    assert.equal(runtime.cancelled.at(-1)!.pod, 'one');
  });

  test('a quiet follow stream gets its headers before any data', async () => {
    runtime.behave = hold;
    const cancels = runtime.cancelled.length;
    const reader = open(urlA, '/api/v1/namespaces/default/pods/one/log?follow=true');
    try {
      assert.equal((await reader.head).status, 200);
      assert.equal(reader.text(), '');
    } finally {
      reader.abort();
    }
    await until('the agent sees the cancel', () => runtime.cancelled.length === cancels + 1);
  });

  test('an agent streams at most 64 logs through one master; more get 429', async () => {
    runtime.behave = hold;
    const asked = runtime.requests.length;
    const cancels = runtime.cancelled.length;
    const readers = Array.from({ length: 64 }, () => open(urlA, '/api/v1/namespaces/default/pods/one/log?follow=true'));
    try {
      await until('the agent has 64 streams', () => runtime.requests.length === asked + 64);
      const refused = await get(urlA, '/api/v1/namespaces/default/pods/one/log');
      assert.equal(refused.status, 429);
      assert.equal(refused.headers['retry-after'], '1');
    } finally {
      for (const r of readers) r.abort();
    }
    await until('every stream is cancelled', () => runtime.cancelled.length === cancels + 64);
    runtime.behave = fakeRuntime().behave;
    assert.equal((await get(urlA, '/api/v1/namespaces/default/pods/one/log')).status, 200, 'served again once they are closed');
  });

  test('an agent not connected to any master: 503 with Retry-After', async () => {
    const answer = await get(urlA, '/api/v1/namespaces/default/pods/far/log');
    assert.equal(answer.status, 503);
    assert.equal(answer.headers['retry-after'], '5');
    assert.equal(status(answer).message, 'the agent of node "w3" is not connected to any master, so the logs of pod "far" cannot be read now');
  });

  test('a master without the agent forwards to the one that has it, streaming and cancelling through it', async () => {
    runtime.behave = fakeRuntime().behave;
    const plain = await get(urlB, '/api/v1/namespaces/default/pods/two/log?container=a&tailLines=3');
    assert.equal(plain.status, 200);
    assert.equal(plain.body, 'two/a: line 1\nline 2\n');
    assert.equal(runtime.requests.at(-1)!.tailLines, 3);

    runtime.behave = (_r, s) => s.end({ code: 400, message: 'container "c" in pod "one" is waiting to start: ContainerCreating' });
    const refused = await get(urlB, '/api/v1/namespaces/default/pods/one/log');
    assert.equal(refused.status, 400);
    assert.match(status(refused).message, /waiting to start/);

    // The client's own credential is what the other master checks.
    assert.equal((await get(urlB, '/api/v1/namespaces/default/pods/one/log', nodeToken('w2'))).status, 403);

    runtime.behave = hold;
    const asked = runtime.requests.length;
    const reader = open(urlB, '/api/v1/namespaces/default/pods/one/log?follow=true');
    await until('the agent is asked through A', () => runtime.requests.length === asked + 1);
    runtime.sinks.at(-1)!.data(new TextEncoder().encode('via A\n'));
    await until('the chunk arrives through B', () => reader.text() === 'via A\n');
    const cancels = runtime.cancelled.length;
    reader.abort();
    await until('the agent sees the cancel through both masters', () => runtime.cancelled.length === cancels + 1);

    // A forwarded request is never forwarded again.
    const once = await get(urlB, '/api/v1/namespaces/default/pods/one/log', ADMIN, { 'x-flotilla-log-forwarded': '1' });
    assert.equal(once.status, 503);
    assert.match(status(once).message, /not connected to this master/);
  });

  test('an agent that disconnects ends its streams: a message after the text, or a 503 Status', async () => {
    const w2runtime = fakeRuntime();
    w2runtime.behave = hold;
    const w2 = new AgentClient({ apiUrls: [urlA], token: nodeToken('w2'), logs: w2runtime.handler });
    try {
      await until('w2 is connected to A', () => a.agents.nodes().includes('w2'));
      const following = open(urlB, '/api/v1/namespaces/default/pods/quiet/log?follow=true');
      const waiting = open(urlA, '/api/v1/namespaces/default/pods/quiet/log');
      await until('the agent has both streams', () => w2runtime.requests.length === 2);
      w2runtime.sinks[w2runtime.requests.findIndex((r) => r.follow)]!.data(new TextEncoder().encode('started'));
      await until('the text arrives (through B)', () => following.text() === 'started');
      w2.close();
      const [streamed, refused] = await Promise.all([following.done, waiting.done]);
      assert.equal(streamed.status, 200);
      assert.match(streamed.body, /^started\nthe agent of node "w2" disconnected from this master/);
      assert.equal(refused.status, 503);
      assert.match(status(refused).message, /the agent of node "w2" disconnected/);
      assert.equal(w2runtime.cancelled.length, 2, 'the agent stopped both streams when its connection closed');
    } finally {
      w2.close();
    }
  });

  test('malformed frames from an agent close its connection, not the master; frames for unknown streams are ignored', async () => {
    let connects = 0;
    let reply: (conn: WireConnection, id: number) => void = () => undefined;
    const closes: number[] = [];
    const raw = new Dialer({
      url: `${urlA.replace('http', 'ws')}/flotilla/v1/agent`,
      remote: 'A',
      credential: () => `Bearer ${nodeToken('w4')}`,
      credentialHeader: 'authorization',
      backoff: { initialMs: 10, maxMs: 50 },
      maxFrameBytes: 1024 * 1024,
      maxBufferedBytes: 1024 * 1024,
      heartbeatMs: 1000,
      logger: silentLogger,
      onConnect: (conn) => {
        connects++;
        conn.on('close', (code) => closes.push(code));
        conn.on('frame', (f) => {
          if (f['t'] === 'logs') reply(conn, f['id'] as number);
        });
      },
    });
    raw.start();
    try {
      await until('w4 is connected', () => a.agents.nodes().includes('w4'));
      // Frames for streams the master does not have (e.g. cancelled meanwhile) are dropped.
      reply = (conn, id) => {
        conn.send({ t: 'logData', id: id + 1000, data: new TextEncoder().encode('not yours\n') });
        conn.send({ t: 'logEnd', id: id + 1000 });
        conn.send({ t: 'logData', id, data: new TextEncoder().encode('ok\n') });
        conn.send({ t: 'logEnd', id });
        conn.send({ t: 'logEnd', id });
      };
      const fine = await get(urlA, '/api/v1/namespaces/default/pods/raw/log');
      assert.equal(fine.status, 200);
      assert.equal(fine.body, 'ok\n');
      assert.equal(connects, 1, 'the connection stayed up');

      const malformed: ((id: number) => Frame)[] = [
        (id) => ({ t: 'logData', id, data: 'text instead of bytes' }),
        (id) => ({ t: 'logData', id }),
        (id) => ({ t: 'logEnd', id, error: { code: 'x', message: 'm' } }),
        (id) => ({ t: 'logEnd', id, error: { code: 200, message: 'm' } }),
        (id) => ({ t: 'logEnd', id, error: { code: 500 } }),
        (id) => ({ t: 'logEnd', id, error: 'boom' }),
        () => ({ t: 'logData', id: 'one', data: new Uint8Array(1) }),
      ];
      for (const [i, frame] of malformed.entries()) {
        await until(`w4 is connected (attempt ${i})`, () => a.agents.nodes().includes('w4') && raw.connection !== undefined);
        const closed = closes.length;
        reply = (conn, id) => conn.send(frame(id));
        const answer = await get(urlA, '/api/v1/namespaces/default/pods/raw/log');
        assert.equal(answer.status, 503, `frame ${i}`);
        assert.match(status(answer).message, /the agent of node "w4" disconnected/);
        await until(`frame ${i} closes the connection`, () => closes.length === closed + 1);
        assert.equal(closes.at(-1), CLOSE.invalidData, `frame ${i} closed the connection as invalid`);
      }
      // The master serves on.
      runtime.behave = fakeRuntime().behave;
      assert.equal((await get(urlA, '/api/v1/namespaces/default/pods/one/log')).status, 200);
    } finally {
      raw.stop();
    }
  });
});
