// Talking to a test cluster's API: a client-node KubeConfig for a master and a token, and a
// raw HTTPS request helper for what the typed client cannot express (no token, bad JSON,
// huge bodies, Table output).
import { execFile, execFileSync } from 'node:child_process';
import { request } from 'node:https';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import type { ProcessCluster } from './masters.ts';

export function kubeConfig(cluster: ProcessCluster, master: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: cluster.apiUrl(master), caData: Buffer.from(cluster.caCert()).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'user', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'user' }],
    currentContext: 'test',
  });
  return kc;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly json: any;
}

export function raw(cluster: ProcessCluster, master: string, method: string, path: string, options: { token?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  const url = new URL(path, cluster.apiUrl(master));
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: cluster.caCert(),
        headers: {
          ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
          ...(options.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body) }),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** The HTTP status and Kubernetes Status object of a failed client-node call. */
export async function failure(p: Promise<unknown>): Promise<{ code: number; status: any }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiException) {
      const body = err.body as unknown;
      return { code: err.code, status: typeof body === 'string' ? JSON.parse(body) : body };
    }
    throw err;
  }
  throw new Error('the call succeeded, but it was expected to fail');
}

/** A small pod: one container running a shell command. */
export function pod(name: string, labels: Record<string, string> = {}, extra: Record<string, unknown> = {}): any {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels },
    spec: { containers: [{ name: 'main', image: 'busybox', command: ['sleep', '3600'], resources: { requests: { cpu: '100m', memory: '64Mi' } } }], ...extra },
  };
}

export function deployment(name: string, replicas: number): any {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'web', image: 'busybox', command: ['httpd', '-f'], ports: [{ containerPort: 8080 }] }] } },
    },
  };
}

/** kubectl's path, or undefined when it is not installed (the tests that need it say so and skip). */
export const KUBECTL: string | undefined = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
})();

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (at most `timeout` ms) and says how it went; never rejects. */
export function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, timeout = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout, env }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}
