// A port nobody listens on, for tests and benchmarks that start servers; it is released before
// the caller binds it, so another process could take it meanwhile. Ports the OS hands out
// itself (listen(0)) come from the ephemeral range, which every outgoing connection's local
// port comes from too: with thousands of connections open (the fuzz campaign), one of them
// took a port a test had just been given ("already in use"). So the port is drawn at random
// from below that range, where only processes that ask for a port by number ever bind.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** The lowest port the OS uses for outgoing connections (Linux's default: 32768). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}

const HIGH = ephemeralLow() - 1;
const LOW = Math.max(1024, HIGH - 12_000);

function tryListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * Ports this process handed out: a port is released before its caller binds it, so without
 * this two calls in a row (a cluster's peer and client ports) could draw the same one.
 */
const given = new Set<number>();

export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (given.has(port)) continue;
    if (await tryListen(port, host)) {
      given.add(port);
      return port;
    }
  }
  // Everything tried was taken: let the OS choose, as before.
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
