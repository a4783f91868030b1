// The agent's client lists in pages (issue 12, defect 1): a cluster's Services, Endpoints or
// Events can outgrow one 16 MiB frame, and one unpaged answer over it is refused.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AgentClient, ApiServer, Authenticator, hashToken, type KubeObject } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';
import { silentLogger } from '@flotilla/wire';
import { AgentApiClient } from '../src/api-client.ts';

const NODE = 'node-token-of-w1-0123456789';
let api: TestApi;
let server: ApiServer;

before(async () => {
  api = await startTestApi();
  const auth = new Authenticator([]);
  auth.setNodeToken('w1', hashToken(NODE));
  server = await ApiServer.start({ node: api.node, host: '127.0.0.1', port: 0, authenticator: auth, logger: silentLogger });
});

after(async () => {
  await server?.close();
  await api?.stop();
});

test('the agent lists more than a frame holds, in pages at one revision', async () => {
  const note = 'x'.repeat(1400 * 1024);
  for (let i = 0; i < 12; i++) {
    await api.client.create('events', { apiVersion: 'v1', kind: 'Event', metadata: { name: `big-${i}`, namespace: 'default' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'default' }, reason: 'Big', message: note, type: 'Normal' } as KubeObject);
  }
  const agent = new AgentClient({ apiUrls: [`http://127.0.0.1:${server.address().port}`], token: NODE });
  try {
    const listed = await new AgentApiClient(agent).list('events', 'default');
    assert.deepEqual(listed.items.map((e) => e.metadata.name).sort(), Array.from({ length: 12 }, (_, i) => `big-${i}`).sort());
    // The revision is the one every page was read at: a watch from it misses nothing.
    const latest = await api.client.list('events', 'default');
    assert.equal(listed.resourceVersion, latest.resourceVersion);
  } finally {
    agent.close();
  }
});
