// A small HTTPS client for tests and benchmarks that talk to the API of several masters:
// keep-alive connections, JSON in and out, and failover to the next master when one does
// not answer (a master may be SIGKILLed under it). Watches are JSON-line streams that resume
// from their last resourceVersion on another master when their master goes away.
import { Agent, request } from 'node:https';
import { createInterface } from 'node:readline';

export interface HttpAnswer {
  readonly status: number;
  readonly json: any;
}

export class HttpApi {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 128 });
  private preferred = 0;

  constructor(
    private readonly urls: readonly string[],
    private readonly token: string,
    private readonly ca: string,
  ) {}

  /** One request; tries the masters in turn (from the last that answered) until `timeoutMs`. */
  async call(method: string, path: string, body?: unknown, contentType = 'application/json', timeoutMs = 15_000): Promise<HttpAnswer> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const i = (this.preferred + attempt) % this.urls.length;
      try {
        const answer = await this.once(this.urls[i]!, method, path, body, contentType, Math.max(100, Math.min(5000, deadline - Date.now())));
        if (answer.status === 503 || answer.status === 429) {
          last = new Error(`${answer.status}: ${JSON.stringify(answer.json)}`);
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        this.preferred = i;
        return answer;
      } catch (err) {
        last = err;
        if (attempt % this.urls.length === this.urls.length - 1) await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`${method} ${path}: no master answered within ${timeoutMs} ms (${(last as Error)?.message})`);
  }

  /** As call(), but throws unless the status is `expect` (or one of them). */
  async ok(method: string, path: string, body?: unknown, expect: number | number[] = [200, 201], contentType?: string): Promise<any> {
    const a = await this.call(method, path, body, contentType);
    if (!(Array.isArray(expect) ? expect : [expect]).includes(a.status)) throw new Error(`${method} ${path} → ${a.status}: ${a.json?.message ?? JSON.stringify(a.json)}`);
    return a.json;
  }

  private once(base: string, method: string, path: string, body: unknown, contentType: string, timeoutMs: number): Promise<HttpAnswer> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, base),
        {
          method,
          agent: this.agent,
          ca: this.ca,
          timeout: timeoutMs,
          headers: { authorization: `Bearer ${this.token}`, accept: 'application/json', ...(text === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(text) }) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const s = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = JSON.parse(s);
            } catch {
              json = s;
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${base} did not answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(text);
    });
  }

  /**
   * Watches `path` (a collection) from `resourceVersion` ('' = list first, as ADDED events);
   * on a dropped stream resumes from the last resourceVersion seen on the next master.
   * Returns stop().
   */
  watch(path: string, resourceVersion: string, onEvent: (type: string, obj: any) => void): () => void {
    let stopped = false;
    let rv = resourceVersion;
    let current: { destroy(): void } | undefined;
    let i = this.preferred;
    const open = (): void => {
      if (stopped) return;
      const base = this.urls[i % this.urls.length]!;
      const sep = path.includes('?') ? '&' : '?';
      const req = request(new URL(`${path}${sep}watch=true&allowWatchBookmarks=true${rv === '' ? '' : `&resourceVersion=${rv}`}`, base), { agent: false, ca: this.ca, headers: { authorization: `Bearer ${this.token}` } }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          retry();
          return;
        }
        const lines = createInterface({ input: res });
        lines.on('error', retry); // readline passes on the stream's errors (e.g. aborted on stop)
        lines.on('line', (line) => {
          if (stopped || line === '') return;
          const e = JSON.parse(line) as { type: string; object: any };
          if (e.type === 'ERROR') {
            rv = ''; // 410: start over from a fresh list
            return;
          }
          const next = e.object?.metadata?.resourceVersion;
          if (typeof next === 'string' && next !== '') rv = next;
          if (e.type !== 'BOOKMARK') onEvent(e.type, e.object);
        });
        res.on('close', retry);
        res.on('error', retry);
      });
      current = req;
      req.on('error', retry);
      req.end();
    };
    let retrying = false;
    const retry = (): void => {
      if (stopped || retrying) return;
      retrying = true;
      current?.destroy();
      i++;
      setTimeout(() => {
        retrying = false;
        open();
      }, 50);
    };
    open();
    return () => {
      stopped = true;
      current?.destroy();
    };
  }

  close(): void {
    this.agent.destroy();
  }
}
