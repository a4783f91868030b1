import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { AUTH_HEADER, checkCredential, type CredentialCheck } from './auth.ts';
import { WireConnection, type ConnectionOptions } from './connection.ts';
import { WireError } from './errors.ts';

export interface ServerOptions extends ConnectionOptions {
  /** Decides who may connect, from the upgrade request, before any frame is read. */
  readonly authenticate: (req: IncomingMessage) => CredentialCheck;
  /** Only upgrades to this path are accepted (default "/"). */
  readonly path?: string;
}

/** The usual authenticator: a credential (see auth.ts) signed with the cluster secret. */
export function secretAuthenticator(secret: string): (req: IncomingMessage) => CredentialCheck {
  return (req) => {
    const header = req.headers[AUTH_HEADER];
    return checkCredential(secret, Array.isArray(header) ? header[0] : header);
  };
}

function refuse(socket: Duplex, status: string, reason: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(reason)}\r\n\r\n${reason}`);
  socket.destroy();
}

/**
 * Accepts WireConnections. Authentication happens on the HTTP upgrade: a request without a
 * valid credential gets 401 and its socket is closed, so no frame from it is ever read.
 */
export class WireServer {
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<WireConnection>();

  private constructor(
    private readonly http: Server | HttpsServer,
    private readonly options: ServerOptions,
    private readonly onConnection: (conn: WireConnection) => void,
    private readonly ownsHttp: boolean,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes, perMessageDeflate: false });
    http.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
  }

  /** Listens on host:port (port 0 picks a free one). Rejects with WireError when it cannot. */
  static listen(host: string, port: number, options: ServerOptions, onConnection: (conn: WireConnection) => void): Promise<WireServer> {
    const http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      res.end('this port speaks the Flotilla wire protocol over WebSocket only\n');
    });
    return new Promise((resolve, reject) => {
      http.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port)));
      http.listen(port, host, () => {
        http.removeAllListeners('error');
        http.on('error', (err) => options.logger.error({ err: err.message }, 'wire server error'));
        resolve(new WireServer(http, options, onConnection, true));
      });
    });
  }

  /** Serves WireConnections on an existing HTTP(S) server at `options.path`. */
  static attach(http: Server | HttpsServer, options: ServerOptions, onConnection: (conn: WireConnection) => void): WireServer {
    return new WireServer(http, options, onConnection, false);
  }

  address(): { host: string; port: number } {
    const a = this.http.address();
    if (a === null || typeof a === 'string') throw new WireError('closed', 'the server is not listening');
    return { host: a.address, port: a.port };
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== (this.options.path ?? '/')) {
      // On a shared HTTP server another WireServer may handle this path; if none can, say so.
      if (this.ownsHttp || this.http.listenerCount('upgrade') === 1) refuse(socket, '404 Not Found', `no WebSocket endpoint at ${path}\n`);
      return;
    }
    const check = this.options.authenticate(req);
    if (!check.ok) {
      this.options.logger.warn({ from: req.socket.remoteAddress, reason: check.reason }, 'refused connection');
      refuse(socket, '401 Unauthorized', `${check.reason}\n`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new WireConnection(ws, check.name, this.options);
      this.connections.add(conn);
      conn.on('close', () => this.connections.delete(conn));
      this.onConnection(conn);
    });
  }

  /** Closes every connection and stops listening (if this server owns the port). */
  close(): Promise<void> {
    for (const conn of this.connections) conn.close(1001, 'server shutting down');
    this.wss.close();
    if (!this.ownsHttp) return Promise.resolve();
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections?.();
    });
  }
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  if (err.code === 'EADDRINUSE') return new WireError('invalid-config', `${host}:${port} is already in use by another process`);
  if (err.code === 'EADDRNOTAVAIL') return new WireError('invalid-config', `${host} is not an address of this machine`);
  if (err.code === 'EACCES') return new WireError('invalid-config', `no permission to listen on ${host}:${port}`);
  return new WireError('invalid-config', `cannot listen on ${host}:${port}: ${err.message}`);
}
