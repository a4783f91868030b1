import type { NodeId } from '@flotilla/raft';
import type { Frame, Logger } from '@flotilla/wire';

// Masters compare what they applied, as etcd's corruption check does: each asks its peers for
// their applied hash (a digest of every entry applied, in order; see MvccStore.noteApplied) at
// its own applied index, at start and then periodically. Since the digest chains every entry,
// two masters that once applied different bytes differ at every index after. A master whose
// hash a majority of the voters contradicts, with one voice, raises the CORRUPT alarm and
// stops serving; one that restarts serves only once a majority has agreed with it at or past
// the index it replayed from its own disk, so a damaged disk that the checksums could not see
// is still never served from. The frames (control frames of the peer transport):
//   {k:'hashAsk', index, hash, alarms}  → {k:'hashTell', index, hash | null, alarms}
// A peer not yet at `index` answers once it gets there; one that no longer holds it answers null.
// `alarms` (each master's own alarm types) ride along, so a master knows when a majority's
// disks are full and can say so to its clients.

/** How many recent applied hashes a master keeps to answer with. */
const KEPT = 4096;

/** The applied hash at each of the most recent indexes. */
export class AppliedHashes {
  private readonly byIndex = new Map<number, string>();

  record(index: number, hash: string): void {
    this.byIndex.set(index, hash);
    if (this.byIndex.size > KEPT) this.byIndex.delete(this.byIndex.keys().next().value!);
  }

  /** After a snapshot replaced the state: only its own point is known. */
  reset(index: number, hash: string): void {
    this.byIndex.clear();
    this.record(index, hash);
  }

  at(index: number): string | undefined {
    return this.byIndex.get(index);
  }
}

export interface HashCheckOptions {
  readonly self: NodeId;
  readonly hashes: AppliedHashes;
  readonly applied: () => { readonly index: number; readonly hash: string };
  readonly voters: () => readonly NodeId[];
  /** Peers that can be asked now. */
  readonly peers: () => readonly NodeId[];
  readonly send: (to: NodeId, c: Frame) => boolean;
  /** This master's alarm types, told to its peers. */
  readonly alarms: () => readonly string[];
  readonly logger: Logger;
  /** The applied index this master reached from its own disk at start (0: nothing to confirm). */
  readonly gateIndex: number;
  readonly onConfirmed: () => void;
  readonly onCorrupt: (message: string) => void;
}

interface Round {
  readonly index: number;
  readonly hash: string;
  readonly tells: Map<NodeId, string>;
}

/** How long a peer's reported alarms count after its last frame. */
const ALARMS_FRESH_MS = 15_000;

export class HashCheck {
  private round: Round | undefined;
  private readonly deferred = new Map<NodeId, { index: number; hash: string; reply: (c: Frame) => void }>();
  private readonly peerAlarms = new Map<NodeId, { alarms: readonly string[]; at: number }>();
  private readonly warned = new Set<string>();
  private confirmedAt: number | undefined;
  private corrupt = false;

  constructor(private readonly options: HashCheckOptions) {
    if (options.gateIndex === 0) this.confirmedAt = 0;
  }

  /** Whether a majority has agreed with this master at or past its gate index. */
  get confirmed(): boolean {
    return this.confirmedAt !== undefined;
  }

  /** Starts a round: asks every reachable peer for its hash at our applied index. */
  ask(): void {
    const { index, hash } = this.options.applied();
    // Before we have replayed our own disk there is nothing worth confirming yet.
    if (index === 0 || (this.confirmedAt === undefined && index < this.options.gateIndex)) return;
    this.round = { index, hash, tells: new Map() };
    const alarms = this.options.alarms();
    for (const peer of this.options.peers()) this.options.send(peer, { k: 'hashAsk', index, hash, alarms: [...alarms] });
    this.decide();
  }

  /** A peer asks for our hash at its index (`reply` answers on its connection). */
  onAsk(from: NodeId, c: Frame, reply: (c: Frame) => void): void {
    const index = c['index'];
    const hash = c['hash'];
    if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 1 || typeof hash !== 'string' || hash.length > 128) return;
    this.noteAlarms(from, c['alarms']);
    if (index > this.options.applied().index) {
      // Not there yet: answered when we apply it (only the latest question per peer is kept).
      this.deferred.set(from, { index, hash, reply });
      return;
    }
    this.tell(from, index, hash, reply);
  }

  /** We applied up to `index`: answer the questions that waited for it. */
  onApplied(index: number): void {
    if (this.deferred.size === 0) return;
    for (const [from, d] of this.deferred) {
      if (d.index > index) continue;
      this.deferred.delete(from);
      this.tell(from, d.index, d.hash, d.reply);
    }
  }

  /** A peer's answer to our question. */
  onTell(from: NodeId, c: Frame): void {
    const index = c['index'];
    const hash = c['hash'];
    this.noteAlarms(from, c['alarms']);
    const round = this.round;
    if (round === undefined || index !== round.index || typeof hash !== 'string' || hash.length > 128) return;
    round.tells.set(from, hash);
    this.decide();
  }

  /** The voters (other than us) that told us, lately, that they have alarm `type`. */
  peersWithAlarm(type: string, now = Date.now()): NodeId[] {
    const voters = new Set(this.options.voters());
    return [...this.peerAlarms].filter(([peer, a]) => voters.has(peer) && now - a.at < ALARMS_FRESH_MS && a.alarms.includes(type)).map(([peer]) => peer);
  }

  forget(peer: NodeId): void {
    this.deferred.delete(peer);
    this.peerAlarms.delete(peer);
  }

  private tell(from: NodeId, index: number, theirs: string, reply: (c: Frame) => void): void {
    const ours = this.options.hashes.at(index);
    reply({ k: 'hashTell', index, hash: ours ?? null, alarms: [...this.options.alarms()] });
    if (ours !== undefined && ours !== theirs) this.warnOnce(from, index, `${from}'s applied state at index ${index} differs from ours (${theirs.slice(0, 12)}… against ${ours.slice(0, 12)}…)`);
  }

  private decide(): void {
    const round = this.round;
    if (round === undefined || this.corrupt) return;
    const voters = this.options.voters();
    const majority = Math.floor(voters.length / 2) + 1;
    let agreeing = 0;
    const others = new Map<string, NodeId[]>();
    for (const v of voters) {
      if (v === this.options.self) {
        agreeing++;
        continue;
      }
      const h = round.tells.get(v);
      if (h === undefined) continue;
      if (h === round.hash) agreeing++;
      else others.set(h, [...(others.get(h) ?? []), v]);
    }
    for (const [h, who] of others) {
      if (who.length >= majority) {
        this.corrupt = true;
        this.options.onCorrupt(
          `what this master applied up to index ${round.index} differs from what ${who.join(', ')} applied (hash ${round.hash.slice(0, 12)}… against ${h.slice(0, 12)}…, a majority of the voters)`,
        );
        return;
      }
      for (const peer of who) this.warnOnce(peer, round.index, `${peer}'s applied state at index ${round.index} differs from ours, and no majority has decided which is right yet`);
    }
    if (this.confirmedAt === undefined && agreeing >= majority && round.index >= this.options.gateIndex) {
      this.confirmedAt = round.index;
      this.options.onConfirmed();
    }
  }

  private noteAlarms(from: NodeId, alarms: unknown): void {
    if (!Array.isArray(alarms) || alarms.length > 8 || !alarms.every((a) => typeof a === 'string' && a.length < 32)) return;
    this.peerAlarms.set(from, { alarms: alarms as string[], at: Date.now() });
  }

  private warnOnce(peer: NodeId, index: number, message: string): void {
    const key = `${peer}:${index}`;
    if (this.warned.has(key)) return;
    if (this.warned.size > 1000) this.warned.clear();
    this.warned.add(key);
    this.options.logger.warn({ peer, index }, message);
  }
}
