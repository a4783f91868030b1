// Request bodies: read with a size limit, parsed as JSON, and refused when they carry a
// "__proto__" key (which no Kubernetes object has, and which merging could turn into a
// prototype change).
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../errors.ts';

/** Request bodies larger than this are refused with 413 (Kubernetes' default is 3 MiB). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export async function readJson(req: IncomingMessage, optional = false): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) {
    req.resume();
    throw new ApiError('RequestEntityTooLarge', `the request body is ${declared} bytes; the limit is ${MAX_BODY_BYTES}`);
  }
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      req.destroy();
      throw new ApiError('RequestEntityTooLarge', `the request body exceeds ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
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
  if (hasProtoKey(body)) throw new ApiError('BadRequest', 'the request body has a "__proto__" field, which no Kubernetes object has');
  return body;
}

/** Whether a parsed body holds a "__proto__" key anywhere. */
export function hasProtoKey(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) return v.some(hasProtoKey);
  return Object.hasOwn(v, '__proto__') || Object.values(v).some(hasProtoKey);
}
