import { KvError } from '../errors.ts';
import type { KeyRange } from './types.ts';

/** The largest key or value the store accepts (as etcd's default request limit). */
export const MAX_KEY_BYTES = 3 * 1024;
export const MAX_VALUE_BYTES = 1536 * 1024;

/**
 * The exclusive upper bound of all keys starting with `prefix`, or undefined when there is
 * none (every key from `prefix` on qualifies).
 */
export function prefixEnd(prefix: string): string | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0xffff) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return undefined;
}

/** A KeyRange as [start, end): end undefined means "to the last key"; single means one key. */
export interface Bounds {
  readonly start: string;
  readonly end: string | undefined;
  readonly single: boolean;
}

export function boundsOf(range: KeyRange): Bounds {
  checkKey(range.key, 'key', range.prefix === true);
  if (range.prefix === true) {
    if (range.end !== undefined) throw new KvError('invalid-request', 'give either prefix or end, not both');
    return { start: range.key, end: prefixEnd(range.key), single: false };
  }
  if (range.end !== undefined) {
    if (typeof range.end !== 'string') throw new KvError('invalid-request', 'end must be a string');
    if (range.end !== '' && range.end <= range.key) throw new KvError('invalid-request', `end "${range.end}" must sort after key "${range.key}"`);
    return { start: range.key, end: range.end === '' ? undefined : range.end, single: false };
  }
  return { start: range.key, end: undefined, single: true };
}

export function checkKey(key: unknown, field: string, allowEmpty = false): asserts key is string {
  if (typeof key !== 'string') throw new KvError('invalid-request', `${field} must be a string`);
  if (key === '' && !allowEmpty) throw new KvError('invalid-request', `${field} must not be empty`);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new KvError('too-large', `${field} is longer than ${MAX_KEY_BYTES} bytes`);
}

export function inBounds(key: string, b: Bounds): boolean {
  if (b.single) return key === b.start;
  return key >= b.start && (b.end === undefined || key < b.end);
}
