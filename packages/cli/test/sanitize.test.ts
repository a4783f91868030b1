// Terminal escape sequences in object text (kubectl's CVE-2021-25743): whoever may write an
// event, an annotation or a container's waiting reason must not be able to drive the terminal
// of whoever runs `flotilla get` or `flotilla describe`. The commands run as a user runs them
// (the real CLI in a child process, against a real API server over HTTP).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { ApiServer, Authenticator, type Pod } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';
import { silentLogger } from '@flotilla/wire';

const TOKEN = 'sanitize-test-admin-token';
const BIN = join(import.meta.dirname, '..', 'bin', 'flotilla.mjs');
/** An OSC that retitles the window, a clear screen, a CSI as its C1 byte, DEL, a carriage return. */
const EVIL = '\u001b]0;owned\u0007\u001b[2J\u009b31m\u007fback\rover';
/** Every control character but newline (describe keeps lines, tables do not). */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

let api: TestApi;
let server: ApiServer;
let dir: string;
let config: string;

before(async () => {
  api = await startTestApi();
  server = await ApiServer.start({ node: api.node, host: '127.0.0.1', port: 0, authenticator: new Authenticator([{ name: 'admin', token: TOKEN, role: 'admin' }]), logger: silentLogger });
  dir = mkdtempSync(join(tmpdir(), 'flotilla-sanitize-'));
  config = join(dir, 'cluster.yaml');
  const { port } = server.address();
  writeFileSync(
    config,
    [
      'cluster: sanitize',
      'secret: sanitize-test-secret-0123456789',
      'insecureHttp: true',
      'tokens:',
      `  - { name: admin, token: ${TOKEN}, role: admin }`,
      'masters:',
      `  - { name: m1, peer: 127.0.0.1:1, client: 127.0.0.1:2, api: 127.0.0.1:${port}, data: ./m1 }`,
      '',
    ].join('\n'),
  );
  const client = api.client;
  const pod = await client.create<Pod>('pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'evil', namespace: 'default', annotations: { note: `first line\nsecond ${EVIL}` } }, spec: { containers: [{ name: 'c', image: 'x' }] } });
  await client.update<Pod>('pods', { ...pod, status: { phase: 'Pending', containerStatuses: [{ name: 'c', ready: false, restartCount: 0, state: { waiting: { reason: `Bad${EVIL}` } } }] } }, 'status');
  await client.create('events', {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: 'evil.1', namespace: 'default' },
    involvedObject: { kind: 'Pod', name: 'evil', namespace: 'default' },
    type: 'Warning',
    reason: `Reason${EVIL}`,
    message: `message ${EVIL}`,
    lastTimestamp: '2026-01-01T00:00:00Z',
  } as never);
});

after(async () => {
  await server?.close();
  await api?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

async function flotilla(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, ...args, '--config', config], { env: { ...process.env, NO_COLOR: '1' } });
  return stdout;
}

test('get prints the table with every control character of object text shown, ESC as ^[', async () => {
  for (const kind of ['pods', 'events']) {
    const out = await flotilla('get', kind);
    assert.doesNotMatch(out, CONTROL, `${kind}: ${JSON.stringify(out)}`);
    assert.ok(out.includes('^[]0;owned\\x07^[[2J\\x9b31m\\x7fback\\rover'), `${kind}: ${JSON.stringify(out)}`);
  }
});

test('describe keeps the lines of a value but shows every other control character', async () => {
  const out = await flotilla('describe', 'pod', 'evil');
  assert.doesNotMatch(out, CONTROL, JSON.stringify(out));
  assert.ok(out.includes('note=first line\nsecond ^[]0;owned\\x07'), JSON.stringify(out));
  assert.ok(out.includes('message ^[]0;owned\\x07^[[2J\\x9b31m\\x7fback\\rover'), JSON.stringify(out));
});

test('escapeTerminal shows C0, DEL and C1 controls; escapeTerminalLines keeps tabs and newlines', async () => {
  const { escapeTerminal, escapeTerminalLines } = await import('../src/sanitize.ts');
  assert.equal(escapeTerminal('a\u001b[31mb\u0000c\td\ne\u0085f\u007f'), 'a^[[31mb\\x00c\\td\\ne\\x85f\\x7f');
  assert.equal(escapeTerminalLines('a\tb\nc\u001b\rd'), 'a\tb\nc^[\\rd');
  assert.equal(escapeTerminal('plain text, ünïcödé ✓'), 'plain text, ünïcödé ✓');
});

test('an error message that quotes text (here the resource type asked for) is shown with its controls visible', async () => {
  const failed = await promisify(execFile)(process.execPath, [BIN, 'get', `pods${EVIL}`, '--config', config]).then(
    () => assert.fail('an unknown resource type should fail'),
    (err: { stderr: string }) => err.stderr,
  );
  assert.match(failed, /doesn't have a resource type "pods\^\[\]0;owned/);
  assert.doesNotMatch(failed, CONTROL, JSON.stringify(failed));
});
