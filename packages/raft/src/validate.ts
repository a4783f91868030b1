import { RaftError } from './errors.ts';
import type { ConfChange, Message, Proposal, SnapshotMetadata } from './types.ts';
import { MAX_TERM, MESSAGE_TYPES } from './types.ts';

// A peer's bytes are decoded by the host, so step() cannot trust their shape. These checks are
// structural and cheap; checks that need the log (an index beyond it, a commit that would
// overwrite) happen where the message is handled, before anything is changed.

const KNOWN_TYPES: ReadonlySet<string> = new Set(MESSAGE_TYPES);
const CONF_CHANGE_TYPES: ReadonlySet<string> = new Set(['addVoter', 'addLearner', 'removeNode']);

type Fields = Record<string, unknown>;

function fail(reason: string): never {
  throw new RaftError('invalid-message', reason);
}

function isObject(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function index(m: Fields, field: string, where: string): number {
  const v = m[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    fail(`${where}: ${field} must be a non-negative integer, got ${describe(v)}`);
  }
  return v;
}

/** A term: an index that is also at most MAX_TERM, so that term + 1 stays exact. */
function term(m: Fields, field: string, where: string): number {
  const v = index(m, field, where);
  if (v > MAX_TERM) fail(`${where}: ${field} ${v} is beyond the largest term a cluster uses (${MAX_TERM})`);
  return v;
}

function flag(m: Fields, field: string, where: string): void {
  if (typeof m[field] !== 'boolean') fail(`${where}: ${field} must be true or false, got ${describe(m[field])}`);
}

function text(m: Fields, field: string, where: string): void {
  if (typeof m[field] !== 'string') fail(`${where}: ${field} must be a string, got ${describe(m[field])}`);
}

function nodeId(m: Fields, field: string, where: string): string {
  const v = m[field];
  if (typeof v !== 'string' || v.length === 0) fail(`${where}: ${field} must be a node id, got ${describe(v)}`);
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function checkConfChange(v: unknown, where: string): asserts v is ConfChange {
  if (!isObject(v)) fail(`${where}: change must be an object, got ${describe(v)}`);
  if (typeof v['type'] !== 'string' || !CONF_CHANGE_TYPES.has(v['type'])) {
    fail(`${where}: change.type must be addVoter, addLearner or removeNode, got ${describe(v['type'])}`);
  }
  nodeId(v, 'nodeId', `${where} change`);
  if (v['context'] !== undefined && !(v['context'] instanceof Uint8Array)) fail(`${where}: change.context must be bytes when given`);
}

function checkProposal(v: unknown, where: string): asserts v is Proposal {
  if (!isObject(v)) fail(`${where} must be an object, got ${describe(v)}`);
  if (v['type'] === 'normal') {
    if (!(v['data'] instanceof Uint8Array)) fail(`${where}: data must be bytes, got ${describe(v['data'])}`);
  } else if (v['type'] === 'confChange') {
    checkConfChange(v['change'], where);
  } else {
    fail(`${where}: type must be normal or confChange, got ${describe(v['type'])}`);
  }
}

function checkEntries(m: Fields, where: string): void {
  const entries = m['entries'];
  if (!Array.isArray(entries)) fail(`${where}: entries must be an array, got ${describe(entries)}`);
  const prevIndex = m['index'] as number;
  const messageTerm = m['term'] as number;
  let prevTerm = m['logTerm'] as number;
  for (let i = 0; i < entries.length; i++) {
    const e: unknown = entries[i];
    const at = `${where} entry ${i}`;
    if (!isObject(e)) fail(`${at} must be an object, got ${describe(e)}`);
    const entryIndex = index(e, 'index', at);
    const entryTerm = term(e, 'term', at);
    if (entryIndex !== prevIndex + 1 + i) fail(`${at}: index ${entryIndex} does not follow ${prevIndex + i}`);
    // Terms in a log never decrease, and no leader sends entries from a term after its own.
    if (entryTerm < prevTerm || entryTerm > messageTerm || entryTerm === 0) {
      fail(`${at}: term ${entryTerm} is out of order (previous ${prevTerm}, message term ${messageTerm})`);
    }
    prevTerm = entryTerm;
    checkProposal(e, at);
  }
}

function checkMetadata(v: unknown, where: string): asserts v is SnapshotMetadata {
  if (!isObject(v)) fail(`${where}: metadata must be an object, got ${describe(v)}`);
  index(v, 'index', `${where} metadata`);
  term(v, 'term', `${where} metadata`);
  const cs = v['confState'];
  if (!isObject(cs)) fail(`${where}: metadata.confState must be an object, got ${describe(cs)}`);
  for (const field of ['voters', 'learners'] as const) {
    const ids = cs[field];
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && id.length > 0)) {
      fail(`${where}: metadata.confState.${field} must be a list of node ids`);
    }
  }
}

/**
 * Checks that `m` is a well-formed message addressed to `self`; throws RaftError
 * `invalid-message` naming the first problem otherwise.
 */
export function validateMessage(m: unknown, self: string): asserts m is Message {
  if (!isObject(m)) fail(`a message must be an object, got ${describe(m)}`);
  const type = m['type'];
  if (typeof type !== 'string' || !KNOWN_TYPES.has(type)) fail(`unknown message type ${describe(type)}`);
  const where = `${type} message`;
  const from = nodeId(m, 'from', where);
  const to = nodeId(m, 'to', where);
  if (to !== self) fail(`${where} is addressed to ${to}, not to ${self}`);
  if (from === self) fail(`${where} claims to come from this node (${self}) itself`);
  term(m, 'term', where);
  switch (type as Message['type']) {
    case 'append':
      index(m, 'index', where);
      term(m, 'logTerm', where);
      index(m, 'commit', where);
      if ((m['logTerm'] as number) > (m['term'] as number)) fail(`${where}: logTerm is after the message term`);
      checkEntries(m, where);
      return;
    case 'appendResponse':
      index(m, 'index', where);
      index(m, 'rejectHint', where);
      term(m, 'logTerm', where);
      flag(m, 'reject', where);
      return;
    case 'heartbeat':
      index(m, 'commit', where);
      index(m, 'readSeq', where);
      return;
    case 'heartbeatResponse':
      index(m, 'readSeq', where);
      index(m, 'commit', where);
      return;
    case 'vote':
    case 'preVote':
      index(m, 'index', where);
      term(m, 'logTerm', where);
      flag(m, 'transfer', where);
      return;
    case 'voteResponse':
    case 'preVoteResponse':
      flag(m, 'reject', where);
      index(m, 'commit', where);
      term(m, 'commitTerm', where);
      return;
    case 'snapshot': {
      checkMetadata(m['metadata'], where);
      index(m, 'offset', where);
      flag(m, 'done', where);
      if (!(m['data'] instanceof Uint8Array)) fail(`${where}: data must be bytes, got ${describe(m['data'])}`);
      if (!(Number.isInteger(m['checksum']) && (m['checksum'] as number) >= 0 && (m['checksum'] as number) <= 0xffffffff)) fail(`${where}: checksum must be an unsigned 32-bit integer, got ${describe(m['checksum'])}`);
      return;
    }
    case 'snapshotResponse':
      index(m, 'snapshotIndex', where);
      index(m, 'offset', where);
      index(m, 'received', where);
      return;
    case 'timeoutNow':
      return;
    case 'readIndex':
      text(m, 'ctx', where);
      return;
    case 'readIndexResponse':
      text(m, 'ctx', where);
      index(m, 'index', where);
      return;
    case 'propose': {
      const proposals = m['proposals'];
      if (!Array.isArray(proposals) || proposals.length === 0) fail(`${where}: proposals must be a non-empty list`);
      proposals.forEach((p: unknown, i) => checkProposal(p, `${where} proposal ${i}`));
      return;
    }
  }
}
