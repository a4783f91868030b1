import type { Entry, NodeId, Role } from '../types.ts';

/** What the checker needs to see of one running node. */
export interface NodeView {
  readonly id: NodeId;
  readonly term: number;
  readonly role: Role;
  readonly commitIndex: number;
  /** The last compacted index (the snapshot's) and its term. */
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  readonly lastIndex: number;
  /** Entries (snapshotIndex, lastIndex]; entry i is at position i - snapshotIndex - 1. */
  readonly entries: readonly Entry[];
}

export class SafetyViolation extends Error {
  override readonly name = 'SafetyViolation';
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
  }
}

const decoder = new TextDecoder();
const keys = new WeakMap<Entry, string>();

/** A printable identity of an entry's content, to compare entries from different nodes. */
export function entryKey(e: Entry): string {
  let key = keys.get(e);
  if (key === undefined) {
    key = e.type === 'confChange' ? `${e.term}:${e.change.type}(${e.change.nodeId})` : `${e.term}:${decoder.decode(e.data)}`;
    keys.set(e, key);
  }
  return key;
}

interface LeaderLog {
  readonly term: number;
  readonly snapshotIndex: number;
  readonly terms: number[];
}

/**
 * Raft's safety properties (Figure 3 of the paper), checked after every step of a
 * simulation, plus two that clients rely on: committed entries stay committed, and a
 * ReadIndex read never returns an index older than a commit it must see.
 *
 * Checking is incremental: a step changes one node, so only that node is compared with the
 * others. Content is compared once per entry object: the checker records the one content
 * ever seen for each (index, term); given that, Log Matching reduces to comparing terms.
 */
export class SafetyChecker {
  /** Election Safety: the one leader seen for each term. */
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** The content seen for each `index:term` (Log Matching's "same index and term" half). */
  private readonly contentOf = new Map<string, string>();
  private readonly seenEntries = new WeakSet<Entry>();
  /** The term of every entry any node has reported committed, by index. */
  private readonly committed = new Map<number, number>();
  /** For each committed index, the lowest term of a node that knew it committed. */
  private readonly committedByTerm = new Map<number, number>();
  /** Every entry any node has applied, by index. */
  private readonly applied = new Map<number, string>();
  private readonly leaderLogs = new Map<NodeId, LeaderLog>();
  private readonly commitSeen = new Map<NodeId, number>();
  /** The highest commit index any node has reached, for read checks. */
  maxCommitIndex = 0;
  checks = 0;

  /** Forget what was seen of one node's volatile state (it crashed: its commit index restarts). */
  nodeRestarted(id: NodeId): void {
    this.commitSeen.delete(id);
    this.leaderLogs.delete(id);
  }

  /** Checks `changed` (the node a step just touched) against itself and every other node. */
  check(changed: NodeView, all: readonly NodeView[]): void {
    this.checks++;
    this.checkEntryContent(changed);
    this.checkElectionSafety(changed);
    const newlyCommitted = this.checkCommitted(changed);
    this.checkLeaderAppendOnly(changed);
    for (const other of all) {
      if (other.id !== changed.id) this.checkLogMatching(changed, other);
      // A new commit can only be missing from leaders of later terms; the changed node's own
      // log is checked whenever it leads.
      if (other.role === 'leader' && (other.id === changed.id || newlyCommitted)) this.checkLeaderCompleteness(other);
    }
  }

  /** State Machine Safety: no two nodes apply different entries at one index. */
  onApply(id: NodeId, entry: Entry): void {
    this.noteApplied(id, entry.index, entryKey(entry), 'applied');
  }

  /** A node installed a snapshot: everything it contains counts as applied there. */
  onSnapshotApplied(id: NodeId, entries: readonly { index: number; key: string }[]): void {
    for (const { index, key } of entries) this.noteApplied(id, index, key, 'installed a snapshot with');
  }

  private noteApplied(id: NodeId, index: number, key: string, verb: string): void {
    const seen = this.applied.get(index);
    if (seen === undefined) this.applied.set(index, key);
    else if (seen !== key) {
      throw new SafetyViolation('State Machine Safety', `${id} ${verb} ${key} at index ${index}, another node applied ${seen}`);
    }
  }

  /** Linearizable reads: a read index covers every commit that happened before the read began. */
  onReadState(id: NodeId, ctx: string, index: number, commitBeforeRead: number): void {
    if (index < commitBeforeRead) {
      throw new SafetyViolation(
        'Linearizable Read',
        `${id} got read index ${index} for ${ctx}, but index ${commitBeforeRead} was committed before the read was issued`,
      );
    }
  }

  /** Log Matching, first half: entries with the same index and term hold the same content. */
  private checkEntryContent(n: NodeView): void {
    for (const e of n.entries) {
      if (this.seenEntries.has(e)) continue;
      this.seenEntries.add(e);
      const at = `${e.index}:${e.term}`;
      const key = entryKey(e);
      const seen = this.contentOf.get(at);
      if (seen === undefined) this.contentOf.set(at, key);
      else if (seen !== key) {
        throw new SafetyViolation('Log Matching', `${n.id} holds ${key} at index ${e.index}, another node holds ${seen} with the same index and term`);
      }
    }
  }

  private checkElectionSafety(n: NodeView): void {
    if (n.role !== 'leader') return;
    const other = this.leaderOfTerm.get(n.term);
    if (other === undefined) this.leaderOfTerm.set(n.term, n.id);
    else if (other !== n.id) {
      throw new SafetyViolation('Election Safety', `${n.id} and ${other} were both leader in term ${n.term}`);
    }
  }

  /** Returns whether this node reported an index committed that no node had before. */
  private checkCommitted(n: NodeView): boolean {
    const before = this.commitSeen.get(n.id) ?? 0;
    if (n.commitIndex < before) {
      throw new SafetyViolation('Commit Monotonicity', `${n.id}'s commit index went back from ${before} to ${n.commitIndex}`);
    }
    if (n.commitIndex > n.lastIndex) {
      throw new SafetyViolation('Commit Bounds', `${n.id} commits ${n.commitIndex} beyond its last index ${n.lastIndex}`);
    }
    this.commitSeen.set(n.id, n.commitIndex);
    const snapTerm = this.committed.get(n.snapshotIndex);
    if (snapTerm !== undefined && n.snapshotIndex > 0 && snapTerm !== n.snapshotTerm) {
      throw new SafetyViolation('Committed Entries Stay Committed', `${n.id}'s snapshot ends at ${n.snapshotIndex} with term ${n.snapshotTerm}, but term ${snapTerm} was committed there`);
    }
    let grew = false;
    for (let i = n.snapshotIndex + 1; i <= n.commitIndex; i++) {
      const e = n.entries[i - n.snapshotIndex - 1]!;
      const term = this.committed.get(i);
      if (term === undefined) {
        this.committed.set(i, e.term);
        this.committedByTerm.set(i, n.term);
        grew = true;
      } else if (term !== e.term) {
        throw new SafetyViolation('Committed Entries Stay Committed', `${n.id} has ${entryKey(e)} committed at index ${i}, but an entry of term ${term} was committed there`);
      } else if (n.term < this.committedByTerm.get(i)!) {
        this.committedByTerm.set(i, n.term);
        grew = true;
      }
    }
    if (n.commitIndex > this.maxCommitIndex) this.maxCommitIndex = n.commitIndex;
    return grew;
  }

  /** Leader Append-Only: a leader never overwrites or deletes entries in its log. */
  private checkLeaderAppendOnly(n: NodeView): void {
    if (n.role !== 'leader') {
      this.leaderLogs.delete(n.id);
      return;
    }
    const prev = this.leaderLogs.get(n.id);
    if (prev !== undefined && prev.term === n.term) {
      const prevLast = prev.snapshotIndex + prev.terms.length;
      if (n.lastIndex < prevLast) {
        throw new SafetyViolation('Leader Append-Only', `leader ${n.id} (term ${n.term}) shrank its log from ${prevLast} to ${n.lastIndex}`);
      }
      for (let i = Math.max(prev.snapshotIndex, n.snapshotIndex) + 1; i <= prevLast; i++) {
        const was = prev.terms[i - prev.snapshotIndex - 1]!;
        const now = n.entries[i - n.snapshotIndex - 1]!.term;
        if (was !== now) {
          throw new SafetyViolation('Leader Append-Only', `leader ${n.id} (term ${n.term}) changed entry ${i} from term ${was} to ${now}`);
        }
      }
    }
    this.leaderLogs.set(n.id, { term: n.term, snapshotIndex: n.snapshotIndex, terms: n.entries.map((e) => e.term) });
  }

  /**
   * Leader Completeness: an entry known committed by a node in term t is in the log of every
   * leader of a later term (the commit happened in a term no later than t).
   */
  private checkLeaderCompleteness(n: NodeView): void {
    for (const [i, knownInTerm] of this.committedByTerm) {
      if (knownInTerm >= n.term || i <= n.snapshotIndex) continue;
      const want = this.committed.get(i)!;
      const e = n.entries[i - n.snapshotIndex - 1];
      if (e === undefined || e.term !== want) {
        throw new SafetyViolation(
          'Leader Completeness',
          `leader ${n.id} of term ${n.term} lacks the entry of term ${want} at index ${i}, committed no later than term ${knownInTerm}`,
        );
      }
    }
  }

  /**
   * Log Matching, second half: if two logs have an entry with the same index and term, they
   * have the same terms (hence, by the first half, the same entries) up to it.
   */
  private checkLogMatching(a: NodeView, b: NodeView): void {
    const lo = Math.max(a.snapshotIndex, b.snapshotIndex) + 1;
    const ea = a.entries;
    const eb = b.entries;
    const offA = a.snapshotIndex + 1;
    const offB = b.snapshotIndex + 1;
    let i = Math.min(a.lastIndex, b.lastIndex);
    while (i >= lo && ea[i - offA]!.term !== eb[i - offB]!.term) i--;
    const matchAt = i;
    for (; i >= lo; i--) {
      if (ea[i - offA]!.term !== eb[i - offB]!.term) {
        throw new SafetyViolation(
          'Log Matching',
          `${a.id} and ${b.id} both hold index ${matchAt} with term ${ea[matchAt - offA]!.term} but differ at index ${i} (terms ${ea[i - offA]!.term} and ${eb[i - offB]!.term})`,
        );
      }
    }
  }
}
