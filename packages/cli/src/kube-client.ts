// How the CLI's Kubernetes commands (get, apply, delete, logs, scale) reach the cluster: the
// API addresses and a token from the cluster file (the first admin, or --user), the cluster CA
// from the store (as `flotilla kubeconfig`), the masters tried in turn. Every failure is one
// sentence: no master reachable (naming the addresses tried), a token refused, or the API's
// own Status message.
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { readClusterCa } from './ca.ts';
import { apiUrl, type ClusterFile } from './cluster-file.ts';

export interface Answer {
  readonly status: number;
  readonly body: any;
}

export class KubeClient {
  private preferred = 0;

  private constructor(
    private readonly urls: readonly string[],
    private readonly token: string,
    private readonly user: string,
    private readonly ca: string | undefined,
    private readonly file: ClusterFile,
  ) {}

  static async connect(file: ClusterFile, userName?: string): Promise<KubeClient> {
    const urls = file.masters.flatMap((m) => apiUrl(file, m) ?? []);
    if (urls.length === 0) throw new Error(`no master in ${file.path} serves the API: give the masters "api" addresses`);
    const user = userName === undefined ? file.tokens.find((t) => t.role === 'admin') : file.tokens.find((t) => t.name === userName);
    if (user === undefined) throw new Error(userName === undefined ? `${file.path} lists no admin token under "tokens"` : `${file.path} has no token for a user named ${userName}`);
    let ca: string | undefined;
    if (!file.insecureHttp) {
      try {
        ca = await readClusterCa(file, 'flotilla-cli', 5000);
      } catch (err) {
        throw new Error(`no master is reachable (tried ${urls.join(', ')}): ${(err as Error).message}; is the cluster running (npm start)?`);
      }
    }
    return new KubeClient(urls, user.token, user.name, ca, file);
  }

  /** One request, JSON in and out; the masters are tried in turn until one answers. */
  async call(method: string, path: string, body?: unknown, options: { contentType?: string; accept?: string } = {}): Promise<Answer> {
    const res = await this.open(method, path, body, options);
    const text = await readAll(res);
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // text/plain answers stay text
    }
    return { status: res.statusCode ?? 0, body: parsed };
  }

  /** Like call(), but any answer other than 2xx throws with the API's message. */
  async ok(method: string, path: string, body?: unknown, options: { contentType?: string; accept?: string } = {}): Promise<any> {
    const a = await this.call(method, path, body, options);
    if (a.status >= 200 && a.status < 300) return a.body;
    throw new Error(this.explain(a));
  }

  /** A streamed GET (logs, watches): the response, for the caller to read. */
  async stream(path: string): Promise<IncomingMessage> {
    const res = await this.open('GET', path, undefined, {});
    if (res.statusCode !== 200) throw new Error(this.explain({ status: res.statusCode ?? 0, body: await readAll(res).then((t) => safeJson(t)) }));
    return res;
  }

  /** The one sentence for a failed answer. */
  explain(a: Answer): string {
    if (a.status === 401) return `the cluster refused the token of user ${this.user} (401 Unauthorized): check "tokens" in ${this.file.path}`;
    const message = typeof a.body === 'object' && a.body !== null && typeof a.body.message === 'string' ? a.body.message : String(a.body).slice(0, 300);
    return `${message} (HTTP ${a.status})`;
  }

  private async open(method: string, path: string, body: unknown, options: { contentType?: string; accept?: string }): Promise<IncomingMessage> {
    const errors: string[] = [];
    for (let attempt = 0; attempt < this.urls.length; attempt++) {
      const i = (this.preferred + attempt) % this.urls.length;
      try {
        const res = await this.once(this.urls[i]!, method, path, body, options);
        // A master without a leader answers 503: another one may do better.
        if (res.statusCode === 503 && attempt < this.urls.length - 1) {
          res.resume();
          errors.push(`${this.urls[i]}: 503`);
          continue;
        }
        this.preferred = i;
        return res;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        errors.push(`${this.urls[i]}: ${code}`);
        // A change that may have reached a master is not sent again (it could be applied
        // twice): only a refused connection means nothing was sent.
        if (method !== 'GET' && code !== 'ECONNREFUSED') throw new Error(`${method} ${path}: ${this.urls[i]} did not answer (${code}); the change may or may not have been made — check before trying again`);
      }
    }
    throw new Error(`no master is reachable (tried ${errors.join(', ')}); is the cluster running (npm start)?`);
  }

  private once(base: string, method: string, path: string, body: unknown, options: { contentType?: string; accept?: string }): Promise<IncomingMessage> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const url = new URL(path, base);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, {
        method,
        ...(this.ca === undefined ? {} : { ca: this.ca }),
        timeout: 10_000,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: options.accept ?? 'application/json',
          ...(text === undefined ? {} : { 'content-type': options.contentType ?? 'application/json', 'content-length': Buffer.byteLength(text) }),
        },
      });
      req.on('response', (res) => {
        req.setTimeout(0);
        resolve(res);
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('no answer within 10 s'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(text);
    });
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
