// For unit tests of the leader-only loops: the real API (registry, validation, watch) on a
// real single-master store in a temporary directory, reached through a LocalClient. Nothing
// listens but the store's peer port on 127.0.0.1 (from freePort).
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreNode } from '@flotilla/store';
import { freePort, silentLogger, type Logger } from '@flotilla/wire';
import { Authenticator } from './auth.ts';
import { ensureNamespaces } from './bootstrap.ts';
import { LocalClient, type LocalClientOptions } from './client/local.ts';
import { ApiServer } from './http/server.ts';

export interface TestApi {
  readonly node: StoreNode;
  readonly server: ApiServer;
  /** An admin client (fenced when `fenced` was asked for). */
  readonly client: LocalClient;
  /** A client with other options (e.g. another fence). */
  clientWith(options: LocalClientOptions): LocalClient;
  stop(): Promise<void>;
}


export async function startTestApi(options: { logger?: Logger; fenced?: boolean; quotaBytes?: number } = {}): Promise<TestApi> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-api-'));
  const logger = options.logger ?? silentLogger;
  const port = await freePort();
  const node = await StoreNode.open({
    id: 'm1',
    members: [{ id: 'm1', peerUrl: `ws://127.0.0.1:${port}/raft` }],
    founders: ['m1'],
    peerListen: { host: '127.0.0.1', port },
    dataDir: dir,
    secret: 'test-api-secret-0123456789',
    logger,
    tickMs: 10,
    electionTicks: 10,
    heartbeatTicks: 1,
    ...(options.quotaBytes === undefined ? {} : { quotaBytes: options.quotaBytes }),
  });
  const deadline = Date.now() + 10_000;
  while (!node.leadership().isLeader || node.notServing() !== undefined) {
    if (Date.now() > deadline) throw new Error('the test store did not elect itself within 10 s');
    await new Promise((r) => setTimeout(r, 5));
  }
  const server = await ApiServer.start({ node, host: '127.0.0.1', port: 0, authenticator: new Authenticator([]), logger, bookmarkSeconds: 1 });
  await ensureNamespaces(server, logger);
  const admin = { name: 'test-admin', role: 'admin' as const };
  const fence = options.fenced === true ? { fence: () => node.leadership().term } : {};
  return {
    node,
    server,
    client: new LocalClient(server, admin, { ...fence, bookmarkSeconds: 1 }),
    clientWith: (o) => new LocalClient(server, admin, o),
    stop: async () => {
      await server.close();
      await node.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Sends `head` as the raw start of an HTTP request to 127.0.0.1:`port` (what a client library
 * would refuse or rewrite: an absolute-form target, a "//" path, a broken chunk size) and
 * resolves with everything the server wrote before it closed the connection.
 */
export function rawHttp(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (text += c));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}
