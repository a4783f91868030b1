// The service proxy against real TCP servers on loopback: each test has its own proxy address
// and backends on their own 127.0.0.x. Backends answer every chunk with `NAME:chunk` and end
// when the client ends, so an answer tells which endpoint served the connection and that
// half-closes pass through.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { cleanups, until } from './helpers.ts';
import type { EndpointAddress, Endpoints, Service, ServicePort } from '@flotilla/api';
import { freePort } from '@flotilla/wire';
import { ServiceProxy } from '../src/proxy.ts';

const NODE = 'w1';

let nextHost = 20;
/** A fresh loopback address per proxy and backend, so no test sees another's ports. */
function host(): string {
  nextHost += 1;
  return `127.0.0.${nextHost}`;
}

interface Backend {
  readonly name: string;
  readonly ip: string;
  readonly port: number;
  connections: number;
}

async function backend(name: string): Promise<Backend> {
  const ip = host();
  const port = await freePort(ip);
  const sockets = new Set<Socket>();
  const b: Backend = { name, ip, port, connections: 0 };
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    b.connections += 1;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', (chunk: Buffer) => s.write(`${name}:${chunk.toString()}`));
    s.on('end', () => s.end());
  });
  server.listen(port, ip);
  await once(server, 'listening');
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return b;
}

/**
 * An address whose dials hang: a process that listens with a backlog of 1 and never accepts
 * (its event loop is blocked), with its accept queue filled, so the kernel drops new SYNs.
 */
async function unresponsive(): Promise<{ ip: string; port: number }> {
  const ip = host();
  const port = await freePort(ip);
  const listener = `require('net').createServer().listen({ host: '${ip}', port: ${port}, backlog: 1 }, () => { console.log('ready'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); })`;
  const child = spawn(process.execPath, ['-e', listener], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => child.kill('SIGKILL'));
  await once(child.stdout, 'data');
  const attempt = (): Promise<boolean> =>
    new Promise((resolve) => {
      const s = connect({ host: ip, port });
      cleanups.push(() => s.destroy());
      s.on('error', () => resolve(false));
      s.on('connect', () => resolve(false));
      setTimeout(() => resolve(true), 300);
    });
  for (let i = 0; i < 10; i++) if (await attempt()) return { ip, port };
  throw new Error(`could not fill the accept queue of ${ip}:${port}`);
}

/** Sends one message, half-closes, and reads everything until the proxy closes ('' if it closed at once). */
function exchange(ip: string, port: number, message = 'ping'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: ip, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer through ${ip}:${port} within 5 s`));
    }, 5000);
    let data = '';
    s.on('data', (c: Buffer) => (data += c.toString()));
    s.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve(data) : reject(err)));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    s.on('connect', () => s.end(message));
  });
}

/** True when nothing listens at ip:port. */
function refused(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: ip, port });
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

function service(name: string, ports: ServicePort[], policy?: 'Cluster' | 'Local'): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'default', name }, spec: { selector: { app: name }, ports, ...(policy === undefined ? {} : { internalTrafficPolicy: policy }) } };
}

/** Endpoints of `name`: each backend ready on the given node, all on one unnamed port per backend. */
function endpoints(name: string, ready: { b: { ip: string; port: number }; node: string }[], notReady: { b: { ip: string; port: number }; node: string }[] = []): Endpoints {
  const addr = (e: { b: { ip: string }; node: string }): EndpointAddress => ({ ip: e.b.ip, nodeName: e.node });
  const ports = new Set([...ready, ...notReady].map((e) => e.b.port));
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { namespace: 'default', name },
    subsets: [...ports].map((port) => ({
      addresses: ready.filter((e) => e.b.port === port).map(addr),
      notReadyAddresses: notReady.filter((e) => e.b.port === port).map(addr),
      ports: [{ port, protocol: 'TCP' as const }],
    })),
  };
}

async function proxy(opts: { dialTimeoutMs?: number; bindRetryMs?: number } = {}) {
  const address = host();
  const errors: { service: string; message: string }[] = [];
  const p = new ServiceProxy({ nodeName: NODE, address, onError: (service, message) => errors.push({ service, message }), ...opts });
  cleanups.push(() => p.close());
  return { p, address, errors, port: await freePort(address) };
}

async function serve(p: ServiceProxy, port: number): Promise<void> {
  await until('the proxy listens', () => p.describe().some((l) => l.port === port && l.listening));
}

test('a node with a local endpoint sends every connection to it, never to the remote one or a not-ready one', async () => {
  const local = await backend('L');
  const remote = await backend('R');
  const localNotReady = await backend('N');
  const { p, address, port } = await proxy();
  p.setService(service('web', [{ port }]));
  p.setEndpoints(endpoints('web', [{ b: local, node: NODE }, { b: remote, node: 'w2' }], [{ b: localNotReady, node: NODE }]));
  await serve(p, port);
  for (let i = 0; i < 6; i++) assert.equal(await exchange(address, port), 'L:ping');
  assert.equal(local.connections, 6);
  assert.equal(remote.connections, 0);
  assert.equal(localNotReady.connections, 0);
  const [info] = p.describe();
  assert.deepEqual(info && { service: info.service, local: info.local, remote: info.remote }, { service: 'default/web', local: [`${local.ip}:${local.port}`], remote: [`${remote.ip}:${remote.port}`] });
});

test('without a local endpoint, connections fall back to remote ones', async () => {
  const remote = await backend('R');
  const { p, address, port } = await proxy();
  p.setService(service('web', [{ port }]));
  p.setEndpoints(endpoints('web', [{ b: remote, node: 'w2' }]));
  await serve(p, port);
  assert.equal(await exchange(address, port, 'hello'), 'R:hello');
  assert.equal(remote.connections, 1);
});

test('connections are spread round-robin across equal local endpoints', async () => {
  const a = await backend('A');
  const b = await backend('B');
  const { p, address, port } = await proxy();
  p.setService(service('web', [{ port }]));
  p.setEndpoints(endpoints('web', [{ b: a, node: NODE }, { b, node: NODE }]));
  await serve(p, port);
  const answers = [];
  for (let i = 0; i < 6; i++) answers.push(await exchange(address, port));
  assert.equal(a.connections, 3);
  assert.equal(b.connections, 3);
  assert.deepEqual(new Set(answers), new Set(['A:ping', 'B:ping']));
});

test('internalTrafficPolicy Local: with no local endpoint the connection is closed, remote ones are never used', async () => {
  const remote = await backend('R');
  const { p, address, port } = await proxy();
  p.setService(service('web', [{ port }], 'Local'));
  p.setEndpoints(endpoints('web', [{ b: remote, node: 'w2' }]));
  await serve(p, port);
  assert.equal(await exchange(address, port), '');
  assert.equal(remote.connections, 0);
  assert.deepEqual(p.describe()[0]?.remote, []);
  // A local endpoint appearing is used at once.
  const local = await backend('L');
  p.setEndpoints(endpoints('web', [{ b: remote, node: 'w2' }, { b: local, node: NODE }]));
  assert.equal(await exchange(address, port), 'L:ping');
});

test('a refused endpoint is skipped: the next local one serves, and remote ones when every local one refuses', async () => {
  const deadIp = host();
  const dead = { ip: deadIp, port: await freePort(deadIp) };
  const local = await backend('L');
  const remote = await backend('R');
  const { p, address, port } = await proxy();
  p.setService(service('web', [{ port }]));
  p.setEndpoints(endpoints('web', [{ b: dead, node: NODE }, { b: local, node: NODE }, { b: remote, node: 'w2' }]));
  await serve(p, port);
  for (let i = 0; i < 4; i++) assert.equal(await exchange(address, port), 'L:ping');
  assert.equal(remote.connections, 0);
  p.setEndpoints(endpoints('web', [{ b: dead, node: NODE }, { b: remote, node: 'w2' }]));
  assert.equal(await exchange(address, port), 'R:ping');
  // Nothing accepts: the client's connection is closed.
  p.setEndpoints(endpoints('web', [{ b: dead, node: NODE }]));
  assert.equal(await exchange(address, port), '');
});

test('an endpoint that never answers the dial is given up after dialTimeoutMs and the next one is used', async () => {
  const stuck = await unresponsive();
  const local = await backend('L');
  const { p, address, port } = await proxy({ dialTimeoutMs: 200 });
  p.setService(service('web', [{ port }]));
  p.setEndpoints(endpoints('web', [{ b: stuck, node: NODE }, { b: local, node: 'w2' }]));
  await serve(p, port);
  assert.equal(await exchange(address, port), 'L:ping');
});

test('an endpoint change applies to new connections and leaves open ones alone', async () => {
  const a = await backend('A');
  const b = await backend('B');
  const { p, address, port } = await proxy();
  p.setService(service('web', [{ port }]));
  p.setEndpoints(endpoints('web', [{ b: a, node: NODE }]));
  await serve(p, port);
  const open = connect({ host: address, port });
  cleanups.push(() => open.destroy());
  let received = '';
  open.on('data', (c: Buffer) => (received += c.toString()));
  open.write('1');
  await until('the open connection is answered', () => received === 'A:1');
  p.setEndpoints(endpoints('web', [{ b, node: NODE }]));
  assert.equal(await exchange(address, port), 'B:ping');
  open.write('2');
  await until('the open connection still reaches its endpoint', () => received === 'A:1A:2');
  p.deleteEndpoints('default', 'web');
  assert.equal(await exchange(address, port), '');
});

test('a large answer after the client half-closes arrives whole, with backpressure on a slow reader', async () => {
  const ip = host();
  const bigPort = await freePort(ip);
  const size = 16 * 1024 * 1024;
  const big = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.resume();
    s.on('end', () => s.end(Buffer.alloc(size, 7)));
  });
  big.listen(bigPort, ip);
  await once(big, 'listening');
  cleanups.push(() => new Promise((r) => big.close(r)));
  const { p, address, port } = await proxy();
  p.setService(service('big', [{ port }]));
  p.setEndpoints(endpoints('big', [{ b: { ip, port: bigPort }, node: NODE }]));
  await serve(p, port);
  const s = connect({ host: address, port, allowHalfOpen: true });
  cleanups.push(() => s.destroy());
  await once(s, 'connect');
  s.end('send it');
  // Read nothing for a while: the proxy must hold back, not drop, what it cannot deliver yet.
  await until('the answer is under way', () => s.readableLength > 0);
  let received = 0;
  s.on('data', (c: Buffer) => (received += c.length));
  await once(s, 'close');
  assert.equal(received, size);
});

test('a named service port forwards to the endpoint port of the same name', async () => {
  const web = await backend('WEB');
  const admin = await backend('ADMIN');
  const { p, address, port } = await proxy();
  const adminPort = await freePort(address);
  p.setService(service('app', [{ name: 'http', port }, { name: 'admin', port: adminPort }]));
  // Two pods, each really listening on one of the two ports only (port 1 refuses): a listener
  // that took the wrong endpoint port would hit a refusal on both.
  p.setEndpoints({ apiVersion: 'v1', kind: 'Endpoints', metadata: { namespace: 'default', name: 'app' }, subsets: [
    { addresses: [{ ip: web.ip, nodeName: NODE }], ports: [{ name: 'admin', port: 1, protocol: 'TCP' }, { name: 'http', port: web.port, protocol: 'TCP' }] },
    { addresses: [{ ip: admin.ip, nodeName: NODE }], ports: [{ name: 'admin', port: admin.port, protocol: 'TCP' }, { name: 'http', port: 1, protocol: 'TCP' }] },
  ] });
  await serve(p, port);
  await serve(p, adminPort);
  assert.deepEqual(p.describe().map((l) => [l.port, l.local.sort()]), [
    [port, [`${admin.ip}:1`, `${web.ip}:${web.port}`].sort()],
    [adminPort, [`${admin.ip}:${admin.port}`, `${web.ip}:1`].sort()],
  ].sort((x, y) => (x[0] as number) - (y[0] as number)));
  for (let i = 0; i < 2; i++) {
    assert.equal(await exchange(address, port), 'WEB:ping');
    assert.equal(await exchange(address, adminPort), 'ADMIN:ping');
  }
});

test('a service whose port changes re-listens; a deleted service stops listening', async () => {
  const a = await backend('A');
  const { p, address, port } = await proxy();
  const port2 = await freePort(address);
  p.setService(service('web', [{ port }]));
  p.setEndpoints(endpoints('web', [{ b: a, node: NODE }]));
  await serve(p, port);
  p.setService(service('web', [{ port: port2 }]));
  await serve(p, port2);
  assert.equal(await exchange(address, port2), 'A:ping');
  await until('the old port is closed', () => refused(address, port));
  p.deleteService('default', 'web');
  await until('the deleted service stops listening', () => refused(address, port2));
  assert.deepEqual(p.describe(), []);
});

test('a port in use is reported through onError, does not throw, and is bound once it is free', async () => {
  const a = await backend('A');
  const { p, address, port, errors } = await proxy({ bindRetryMs: 100 });
  const blocker = createServer((s) => s.end('blocker'));
  blocker.listen(port, address);
  await once(blocker, 'listening');
  p.setService(service('web', [{ port }]));
  p.setEndpoints(endpoints('web', [{ b: a, node: NODE }]));
  await until('the failure is reported', () => errors.length > 0);
  assert.equal(errors[0]?.service, 'default/web');
  assert.match(errors[0]?.message ?? '', new RegExp(`^cannot listen on ${address.replaceAll('.', '\\.')}:${port} for service default/web: address already in use`));
  assert.equal(p.describe()[0]?.listening, false);
  // Retries do not report the same failure again.
  await new Promise((r) => setTimeout(r, 350));
  assert.equal(errors.length, 1);
  await new Promise((r) => blocker.close(r));
  await serve(p, port);
  assert.equal(await exchange(address, port), 'A:ping');
});

test('two services on one port: the first keeps it, the second is reported, and takes over when the first goes', async () => {
  const a = await backend('A');
  const b = await backend('B');
  const { p, address, port, errors } = await proxy();
  p.setService(service('first', [{ port }]));
  p.setEndpoints(endpoints('first', [{ b: a, node: NODE }]));
  p.setService(service('second', [{ port }]));
  p.setEndpoints(endpoints('second', [{ b, node: NODE }]));
  p.setService(service('second', [{ port }])); // a resync does not report it twice
  await serve(p, port);
  assert.equal(await exchange(address, port), 'A:ping');
  assert.deepEqual(errors.map((e) => e.service), ['default/second']);
  assert.match(errors[0]?.message ?? '', /port already used by service default\/first/);
  p.deleteService('default', 'first');
  assert.equal(await exchange(address, port), 'B:ping');
  assert.equal(p.describe()[0]?.service, 'default/second');
});

test('close() ends the listeners and every proxied connection', async () => {
  const a = await backend('A');
  const { p, address, port } = await proxy();
  p.setService(service('web', [{ port }]));
  p.setEndpoints(endpoints('web', [{ b: a, node: NODE }]));
  await serve(p, port);
  const open = connect({ host: address, port });
  cleanups.push(() => open.destroy());
  open.on('error', () => {});
  let received = '';
  open.on('data', (c: Buffer) => (received += c.toString()));
  open.write('x');
  await until('the connection is proxied', () => received === 'A:x');
  let closed = false;
  open.on('close', () => (closed = true));
  const closing = p.close();
  await until('the proxied client connection is closed', () => closed);
  await closing;
  assert.equal(await refused(address, port), true);
  // After close, changes are ignored rather than reopening listeners.
  p.setService(service('web', [{ port }]));
  assert.equal(await refused(address, port), true);
});

test('bad input: odd endpoints and ports, UDP ports and clients that reset do not crash the proxy', async () => {
  const a = await backend('A');
  const { p, address, port } = await proxy();
  const udpPort = await freePort(address);
  p.setService({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'default', name: 'odd' }, spec: { ports: [{ port: 0 }, { port: 70000 }, { port: 1.5 }, { port: udpPort, protocol: 'UDP' }, { port }, null as unknown as ServicePort] } });
  p.setService({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'default', name: 'empty' } });
  p.setService({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'default', name: 'junk' }, spec: { ports: 'nope' as unknown as ServicePort[] } });
  const odd = {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { namespace: 'default', name: 'odd' },
    subsets: [
      null,
      {},
      { addresses: [{ ip: a.ip }] },
      { addresses: [{ nodeName: NODE }, { ip: 'not-an-ip', nodeName: NODE }, null, { ip: 42 }], ports: [{ port: a.port }] },
      { addresses: [{ ip: a.ip, nodeName: NODE }], ports: [{ port: 0 }] },
      { addresses: [{ ip: a.ip, nodeName: NODE }], ports: [{ port: 'http' }, { port: 99999 }, null] },
      { addresses: 'nope', ports: 'nope' },
    ],
  } as unknown as Endpoints;
  p.setEndpoints(odd);
  p.setEndpoints({ apiVersion: 'v1', kind: 'Endpoints', metadata: { namespace: 'default', name: 'empty' } });
  await serve(p, port);
  assert.deepEqual(p.describe().map((l) => ({ port: l.port, local: l.local, remote: l.remote })), [{ port, local: [], remote: [] }]);
  assert.equal(await exchange(address, port), '');
  // Valid endpoints next to the odd ones are used.
  p.setEndpoints({ ...odd, subsets: [...(odd.subsets ?? []), { addresses: [{ ip: a.ip, nodeName: NODE }], ports: [{ port: a.port, protocol: 'TCP' }] }] });
  assert.equal(await exchange(address, port), 'A:ping');
  // A client that resets mid-connection, and one that resets while the dial is under way.
  for (let i = 0; i < 5; i++) {
    const s = connect({ host: address, port });
    s.on('error', () => {});
    await once(s, 'connect');
    if (i % 2 === 0) s.write('x');
    s.resetAndDestroy();
  }
  assert.equal(await exchange(address, port), 'A:ping');
});
