// freePort: ports for tests' servers, drawn below the ephemeral range that outgoing
// connections take their local ports from (one took a port a test had just been given: "already
// in use"), and never the same one twice in a process (a cluster's peer and client ports).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freePort } from '@flotilla/wire';

test('2,000 ports in a row are distinct, bindable, and below the ephemeral range', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const port = await freePort();
    assert.ok(!seen.has(port), `port ${port} was given twice`);
    assert.ok(port < low && port >= 1024, `port ${port} is outside 1024..${low - 1}`);
    seen.add(port);
  }
  const port = await freePort();
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', resolve);
  });
  await new Promise((r) => s.close(r));
});
