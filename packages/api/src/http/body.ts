// Request bodies: read with a size limit, parsed as JSON, and refused when they carry a
// "__proto__" key (which no Kubernetes object has, and which merging could turn into a
// prototype change).
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../errors.ts';

/** Request bodies larger than this are refused with 413 (Kubernetes' default is 3 MiB). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export async function readJson(req: IncomingMessage, optional = false): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) {
    req.resume();
    throw new ApiError('RequestEntityTooLarge', `the request body is ${declared} bytes; the limit is ${MAX_BODY_BYTES}`);
  }
  const chunks = await readBody(req);
  const text = chunks.toString('utf8');
  if (text.trim() === '') {
    if (optional) return undefined;
    throw new ApiError('BadRequest', 'the request needs a JSON body');
  }
  const ct = req.headers['content-type'] ?? '';
  if (/protobuf/.test(ct)) throw new ApiError('UnsupportedMediaType', 'protobuf bodies are not supported; send JSON');
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch (err) {
    throw new ApiError('BadRequest', `the request body is not valid JSON: ${(err as Error).message}`);
  }
  checkBody(body);
  return body;
}

/**
 * How deeply objects and lists may nest in a body, a patch and what a patch produces. The
 * built-in kinds need about a dozen levels; the recursive steps after parsing (structuredClone,
 * JSON.stringify, the merges) overflow the stack near 2,000 levels on Node's default stack.
 */
export const MAX_JSON_DEPTH = 100;

/**
 * Refuses a parsed body nested deeper than MAX_JSON_DEPTH (413) or holding a "__proto__" key
 * anywhere (400), walking it without recursion so that no depth overflows the stack here.
 */
export function checkBody(v: unknown): void {
  const values: unknown[] = [v];
  const depths: number[] = [0];
  while (values.length > 0) {
    const x = values.pop();
    const d = depths.pop()!;
    if (typeof x !== 'object' || x === null) continue;
    if (d + 1 > MAX_JSON_DEPTH) throw new ApiError('RequestEntityTooLarge', `the request body nests more than ${MAX_JSON_DEPTH} levels deep; the limit is ${MAX_JSON_DEPTH}`);
    if (!Array.isArray(x) && Object.hasOwn(x, '__proto__')) throw new ApiError('BadRequest', 'the request body has a "__proto__" field, which no Kubernetes object has');
    for (const item of Array.isArray(x) ? x : Object.values(x)) {
      values.push(item);
      depths.push(d + 1);
    }
  }
}

/**
 * The body's bytes, up to MAX_BODY_BYTES. Past that the rest is read and dropped (as Node does
 * with a body nobody reads), not cut off: a client still sending when its socket is reset may
 * never read the 413 that says why. Node's request timeout bounds how long that can go on.
 */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        done();
        req.resume();
        reject(new ApiError('RequestEntityTooLarge', `the request body exceeds ${MAX_BODY_BYTES} bytes, the limit`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    const onClose = (): void => onError(new Error('the client closed the connection before the body ended'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
