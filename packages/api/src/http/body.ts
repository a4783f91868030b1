// Request bodies: read with a size limit, measured before they are parsed as JSON (depth,
// values, members of one object: the work a body costs the event loop), and refused when they
// carry a "__proto__" key (which no Kubernetes object has, and which merging could turn into a
// prototype change).
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
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
  measureJsonText(text);
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
 * The most values (object members and list items, counted with the objects and lists that
 * hold them) a body may hold, and the most members one object may have. Parsing, copying and
 * checking a body costs about a microsecond per value, several for members of a very large
 * object (V8 keeps those in a hash table): the bounds keep each step of a request to a few
 * tens of milliseconds of one event loop that every other client shares. The built-in kinds
 * need hundreds; Kubernetes' own bound on annotations (256 KiB) allows about 10,000.
 */
export const MAX_BODY_VALUES = 100_000;
export const MAX_OBJECT_MEMBERS = 10_000;

/**
 * Refuses (413, naming the bound) JSON text that nests deeper than MAX_JSON_DEPTH or holds more
 * than MAX_BODY_VALUES values or an object of more than MAX_OBJECT_MEMBERS, before it is
 * parsed: one pass over the text, skipping strings, counting brackets, commas and colons.
 * Counts are exact for valid JSON; invalid JSON is left to the parser to refuse.
 */
export function measureJsonText(text: string): void {
  const members: number[] = []; // per open container: members so far, -1 for a list
  let values = 1;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: to its closing quote, stepping over escapes
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      members.push(c === 0x7b ? 0 : -1);
      if (members.length > MAX_JSON_DEPTH) throw new ApiError('RequestEntityTooLarge', `the request body nests more than ${MAX_JSON_DEPTH} levels deep; the limit is ${MAX_JSON_DEPTH}`);
    } else if (c === 0x7d || c === 0x5d) {
      members.pop();
    } else if (c === 0x2c) {
      if (++values > MAX_BODY_VALUES) throw new ApiError('RequestEntityTooLarge', `the request body holds more than ${MAX_BODY_VALUES} values; the limit is ${MAX_BODY_VALUES}`);
    } else if (c === 0x3a) {
      const top = members.length - 1;
      if (top >= 0 && members[top]! >= 0 && ++members[top]! > MAX_OBJECT_MEMBERS) throw new ApiError('RequestEntityTooLarge', `an object in the request body has more than ${MAX_OBJECT_MEMBERS} members; the limit is ${MAX_OBJECT_MEMBERS}`);
    }
  }
}

/**
 * Refuses a parsed body past MAX_JSON_DEPTH, MAX_BODY_VALUES or MAX_OBJECT_MEMBERS (413) or
 * holding a "__proto__" key anywhere (400), walking it without recursion so that no depth
 * overflows the stack here. Bodies that came as JSON text were measured before parsing
 * (measureJsonText); agents' come decoded from a frame.
 */
export function checkBody(v: unknown): void {
  const values: unknown[] = [v];
  const depths: number[] = [0];
  let count = 1;
  while (values.length > 0) {
    const x = values.pop();
    const d = depths.pop()!;
    if (typeof x !== 'object' || x === null) continue;
    if (d + 1 > MAX_JSON_DEPTH) throw new ApiError('RequestEntityTooLarge', `the request body nests more than ${MAX_JSON_DEPTH} levels deep; the limit is ${MAX_JSON_DEPTH}`);
    if (!Array.isArray(x) && Object.hasOwn(x, '__proto__')) throw new ApiError('BadRequest', 'the request body has a "__proto__" field, which no Kubernetes object has');
    const items = Array.isArray(x) ? x : Object.values(x);
    if (!Array.isArray(x) && items.length > MAX_OBJECT_MEMBERS) throw new ApiError('RequestEntityTooLarge', `an object in the request body has more than ${MAX_OBJECT_MEMBERS} members; the limit is ${MAX_OBJECT_MEMBERS}`);
    count += items.length;
    if (count > MAX_BODY_VALUES) throw new ApiError('RequestEntityTooLarge', `the request body holds more than ${MAX_BODY_VALUES} values; the limit is ${MAX_BODY_VALUES}`);
    for (const item of items) {
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
    // The client went away (or broke the framing) mid-body: nobody is left to answer, and it
    // is not this master's error.
    const onError = (err: Error): void => {
      done();
      reject(new ApiError('BadRequest', `the request body was not received whole (${err.message})`));
    };
    const onClose = (): void => onError(new Error('the client closed the connection'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** How long, at most, a connection answered before its body was read stays open to drop the rest. */
export const LINGER_MS = 5000;

/**
 * For a request that may be answered before its body is read whole (refused, or too large):
 * if the connection then closes, it closes in stages (RFC 9112 9.6). Node destroys the socket
 * once the answer is written, and the body still arriving makes the kernel reset the
 * connection, which also drops the answer from a client that has not read it yet (a busy one:
 * the fuzz campaign's "unanswered" findings, EPIPE and nothing else). Here this side is closed
 * first, Node's parser goes on reading (and dropping) the rest of the body, and the socket is
 * destroyed once the body has all come, the client has closed, or LINGER_MS has passed.
 * Nothing more is served on the connection meanwhile (Node serves nothing after a response
 * that closes it).
 */
export function closeInStages(req: IncomingMessage): void {
  const socket = req.socket as Socket & { destroySoon: () => void };
  socket.destroySoon = function lingeringDestroySoon(this: Socket): void {
    if (req.complete || this.destroyed) {
      Socket.prototype.destroySoon.call(this);
      return;
    }
    this.end();
    // Once nothing more comes, as Node would have: destroyed when what was written has gone;
    // past LINGER_MS, at once.
    const stop = (): void => {
      clearTimeout(timer);
      Socket.prototype.destroySoon.call(this);
    };
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    req.once('end', stop);
    this.once('end', stop);
    this.once('close', () => clearTimeout(timer));
  };
}
