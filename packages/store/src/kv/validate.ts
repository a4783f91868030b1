import { KvError } from '../errors.ts';
import { boundsOf, checkKey, MAX_VALUE_BYTES } from './keyrange.ts';
import type { Compare, RangeRequest, RequestOp, Session, WatchRequest, WriteRequest } from './types.ts';

// Requests arrive from the network decoded but untyped. These checks turn anything malformed
// into KvError `invalid-request` (or `too-large`) naming the field, before it reaches the log.

type Obj = Record<string, unknown>;

/** Only the named fields that are present: nothing else from the network reaches the log. */
function pick<T>(o: Obj, fields: readonly string[]): T {
  const out: Obj = {};
  for (const f of fields) if (o[f] !== undefined) out[f] = o[f];
  return out as T;
}

function fail(message: string): never {
  throw new KvError('invalid-request', message);
}

function object(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) fail(`${what} must be an object`);
  return v as Obj;
}

function optionalCount(o: Obj, field: string, what: string): void {
  const v = o[field];
  if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) fail(`${what}.${field} must be a non-negative integer`);
}

function optionalFlag(o: Obj, field: string, what: string): void {
  if (o[field] !== undefined && typeof o[field] !== 'boolean') fail(`${what}.${field} must be true or false`);
}

function keyRange(o: Obj, what: string): void {
  if (o['prefix'] !== undefined && typeof o['prefix'] !== 'boolean') fail(`${what}.prefix must be true or false`);
  if (o['end'] !== undefined && typeof o['end'] !== 'string') fail(`${what}.end must be a string`);
  boundsOf(o as never);
}

function bytes(o: Obj, field: string, what: string): void {
  const v = o[field];
  if (!(v instanceof Uint8Array)) fail(`${what}.${field} must be bytes`);
  if (v.byteLength > MAX_VALUE_BYTES) throw new KvError('too-large', `${what}.${field} is larger than ${MAX_VALUE_BYTES} bytes`);
}

export function validateRange(v: unknown, what = 'range'): RangeRequest {
  const o = object(v, what);
  keyRange(o, what);
  optionalCount(o, 'revision', what);
  optionalCount(o, 'limit', what);
  optionalFlag(o, 'keysOnly', what);
  optionalFlag(o, 'countOnly', what);
  return pick(o, ['key', 'prefix', 'end', 'revision', 'limit', 'keysOnly', 'countOnly']);
}

export function validateWatch(v: unknown): WatchRequest {
  const o = object(v, 'watch');
  keyRange(o, 'watch');
  optionalCount(o, 'startRevision', 'watch');
  optionalFlag(o, 'prevKv', 'watch');
  return pick(o, ['key', 'prefix', 'end', 'startRevision', 'prevKv']);
}

function validateOp(v: unknown, what: string): RequestOp {
  const o = object(v, what);
  switch (o['op']) {
    case 'range':
      return { op: 'range', ...validateRange(o, what) };
    case 'put':
      checkKey(o['key'], `${what}.key`);
      bytes(o, 'value', what);
      optionalCount(o, 'lease', what);
      optionalFlag(o, 'prevKv', what);
      return pick(o, ['op', 'key', 'value', 'lease', 'prevKv']);
    case 'deleteRange':
      keyRange(o, what);
      optionalFlag(o, 'prevKv', what);
      return pick(o, ['op', 'key', 'prefix', 'end', 'prevKv']);
    default:
      fail(`${what}.op must be range, put or deleteRange`);
  }
}

function validateCompare(v: unknown, what: string): Compare {
  const o = object(v, what);
  checkKey(o['key'], `${what}.key`);
  if (!['value', 'version', 'createRevision', 'modRevision', 'lease'].includes(o['target'] as string)) fail(`${what}.target must be value, version, createRevision, modRevision or lease`);
  if (!['equal', 'notEqual', 'less', 'greater'].includes(o['result'] as string)) fail(`${what}.result must be equal, notEqual, less or greater`);
  if (o['target'] === 'value') bytes(o, 'value', what);
  else if (typeof o['value'] !== 'number' || !Number.isSafeInteger(o['value'])) fail(`${what}.value must be an integer`);
  return pick(o, ['key', 'target', 'result', 'value']);
}

function list<T>(v: unknown, what: string, item: (x: unknown, what: string) => T): T[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(`${what} must be a list`);
  if (v.length > 128) throw new KvError('too-large', `${what} has more than 128 items`);
  return v.map((x, i) => item(x, `${what}[${i}]`));
}

export function validateWrite(v: unknown): WriteRequest {
  const o = object(v, 'request');
  switch (o['type']) {
    case 'put':
      checkKey(o['key'], 'key');
      bytes(o, 'value', 'put');
      optionalCount(o, 'lease', 'put');
      optionalFlag(o, 'prevKv', 'put');
      return pick(o, ['type', 'key', 'value', 'lease', 'prevKv']);
    case 'deleteRange':
      keyRange(o, 'deleteRange');
      optionalFlag(o, 'prevKv', 'deleteRange');
      return pick(o, ['type', 'key', 'prefix', 'end', 'prevKv']);
    case 'txn':
      return {
        type: 'txn',
        compare: list(o['compare'], 'txn.compare', validateCompare),
        success: list(o['success'], 'txn.success', validateOp),
        failure: list(o['failure'], 'txn.failure', validateOp),
      };
    case 'leaseGrant':
      if (typeof o['ttl'] !== 'number' || !Number.isInteger(o['ttl']) || o['ttl'] < 1) fail('leaseGrant.ttl must be a whole number of seconds, at least 1');
      optionalCount(o, 'id', 'leaseGrant');
      return pick(o, ['type', 'ttl', 'id']);
    case 'leaseRevoke':
    case 'leaseKeepAlive':
      if (typeof o['id'] !== 'number' || !Number.isSafeInteger(o['id']) || o['id'] < 1) fail(`${o['type']}.id must be a lease id`);
      return pick(o, ['type', 'id']);
    case 'compact':
      if (typeof o['revision'] !== 'number' || !Number.isSafeInteger(o['revision']) || o['revision'] < 1) fail('compact.revision must be a positive integer');
      return pick(o, ['type', 'revision']);
    default:
      fail('request.type must be put, deleteRange, txn, leaseGrant, leaseRevoke, leaseKeepAlive or compact');
  }
}

export function validateSession(v: unknown): Session | undefined {
  if (v === undefined) return undefined;
  const o = object(v, 'session');
  if (typeof o['client'] !== 'string' || o['client'].length === 0 || o['client'].length > 128) fail('session.client must be a non-empty string');
  for (const f of ['seq', 'firstUnacked']) {
    if (typeof o[f] !== 'number' || !Number.isSafeInteger(o[f]) || (o[f] as number) < 1) fail(`session.${f} must be a positive integer`);
  }
  if ((o['firstUnacked'] as number) > (o['seq'] as number)) fail('session.firstUnacked cannot be after session.seq');
  return pick(o, ['client', 'seq', 'firstUnacked']);
}
