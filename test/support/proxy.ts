// A TCP proxy in front of one master's peer port, to cut links between masters. Every master
// dials its peers from its own loopback address (127.0.0.x), so a proxy can tell who is
// connecting and refuse (or cut) the links a test wants down.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

interface Link {
  readonly from: string;
  readonly a: Socket;
  readonly b: Socket;
}

export class FaultProxy {
  private readonly sockets = new Set<Link>();
  private blocked = new Set<string>();
  private blockEveryone = false;

  private constructor(
    private readonly server: Server,
    private readonly target: { host: string; port: number },
  ) {}

  /** Listens on `listen` and forwards to `target`. */
  static start(listen: { host: string; port: number }, target: { host: string; port: number }): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined;
    const server = createServer((a) => proxy!.accept(a));
    proxy = new FaultProxy(server, target);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => resolve(proxy!));
    });
  }

  /** Refuses and cuts connections from these source addresses (or from everyone). */
  block(sources: readonly string[] | 'everyone'): void {
    if (sources === 'everyone') this.blockEveryone = true;
    else for (const s of sources) this.blocked.add(s);
    for (const link of [...this.sockets]) if (this.isBlocked(link.from)) this.cut(link);
  }

  heal(): void {
    this.blocked = new Set();
    this.blockEveryone = false;
  }

  private isBlocked(from: string): boolean {
    return this.blockEveryone || this.blocked.has(from);
  }

  private accept(a: Socket): void {
    const from = (a.remoteAddress ?? '').replace(/^::ffff:/, '');
    if (this.isBlocked(from)) {
      a.destroy();
      return;
    }
    const b = createConnection(this.target);
    const link: Link = { from, a, b };
    this.sockets.add(link);
    const close = (): void => this.cut(link);
    a.on('error', close).on('close', close);
    b.on('error', close).on('close', close);
    a.pipe(b);
    b.pipe(a);
  }

  private cut(link: Link): void {
    link.a.destroy();
    link.b.destroy();
    this.sockets.delete(link);
  }

  close(): Promise<void> {
    for (const link of [...this.sockets]) this.cut(link);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
