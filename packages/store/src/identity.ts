import { randomBytes } from 'node:crypto';
import type { NodeId } from '@flotilla/raft';

// Which member a data directory belongs to, and which incarnation of each peer this master has
// met. Raft assumes a member never forgets its log or its vote; a master whose directory was
// wiped or lost, restarted under its old name, would break that silently (issue 11: it voted
// again, and acknowledged writes were lost). So every directory gets a random member id when
// it is created, and every master remembers (on disk) the member id of each peer it has heard
// from. A master whose directory is new must hear from enough peers before it takes part in
// Raft that one of them would remember a lost predecessor: if any knows its name under another
// id, it refuses to start and says how to come back as a new member.

export interface Identity {
  /** The cluster's name, from the cluster file. */
  readonly cluster: string;
  /** The cluster's id, chosen once by its first leader; null until this master applied it. */
  readonly clusterId: string | null;
  readonly member: NodeId;
  /** This data directory's incarnation of `member`. */
  readonly memberId: string;
  readonly createdAt: string;
  /** Enough peers have recorded memberId (see quorumsFor); until then this master runs no Raft. */
  readonly announced: boolean;
  /** Set when this master found its applied state differs from the majority's (CORRUPT). */
  readonly corrupt?: { readonly message: string; readonly since: string };
}

export function newIdentity(cluster: string, member: NodeId): Identity {
  return { cluster, clusterId: null, member, memberId: randomBytes(8).toString('hex'), createdAt: new Date().toISOString(), announced: false };
}

/** Checks a stored identity's shape; undefined when it has none. */
export function readIdentity(v: unknown): Identity | undefined {
  if (v === undefined) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || typeof o['member'] !== 'string' || typeof o['memberId'] !== 'string' || typeof o['cluster'] !== 'string') {
    throw new Error('the identity record is malformed');
  }
  return o as unknown as Identity;
}

/** What a master says about itself to every peer it dials, before any Raft message. */
export interface Hello {
  readonly member: NodeId;
  readonly memberId: string;
  readonly cluster: string;
  readonly clusterId: string | null;
}

/** What the peer answers: welcome (it has recorded us), or why not. */
export type Refusal =
  /** The name is not in the cluster file and was never added. */
  | 'not-member'
  /** The dialer belongs to another cluster (name or id). */
  | 'cluster'
  /** The peer knows this member under another member id: the dialer's directory is not the one it met. */
  | 'incarnation'
  /** This member id was removed from the cluster. */
  | 'retired'
  /** The peer could not record us now (its disk); try again. */
  | 'busy';

export type Admission = { readonly ok: true } | { readonly ok: false; readonly reason: Refusal; readonly message: string };

/** Refusals that say this directory must not take part in Raft (retrying will not help). */
export function isConclusive(reason: Refusal): boolean {
  return reason === 'cluster' || reason === 'incarnation' || reason === 'retired';
}

const NAME = /^[A-Za-z0-9._-]{1,128}$/;
const ID = /^[0-9a-f]{16,64}$/;

/** A peer's hello, checked; a string says what is wrong with it. */
export function validateHello(f: Record<string, unknown>): Hello | string {
  const { member, memberId, cluster, clusterId } = f;
  if (typeof member !== 'string' || !NAME.test(member)) return 'hello.member must be a member name';
  if (typeof memberId !== 'string' || !ID.test(memberId)) return 'hello.memberId must be a hex id';
  if (typeof cluster !== 'string' || cluster.length > 253) return 'hello.cluster must be a cluster name';
  if (clusterId !== null && (typeof clusterId !== 'string' || !ID.test(clusterId))) return 'hello.clusterId must be a hex id or null';
  return { member, memberId, cluster, clusterId };
}

/**
 * How many peers must have recorded a new member id before its master may take part in Raft
 * (`announce`), and how many a master with a new directory must hear from before it may
 * conclude no predecessor existed (`fresh`). Any `fresh` peers and any `announce` peers share
 * one, since announce + fresh > peers, so a lost predecessor is always noticed.
 */
export function quorumsFor(members: number): { announce: number; fresh: number } {
  const peers = Math.max(0, members - 1);
  const announce = Math.ceil(peers / 2);
  return { announce, fresh: peers === 0 ? 0 : peers - announce + 1 };
}

interface PeerRecord {
  readonly memberId: string;
  readonly since: string;
  /** The log index this master had applied when it met it: removals before it are older than it. */
  readonly seenAt: number;
}

/** The member ids of the peers this master has met, and those removed from the cluster. */
export class Incarnations {
  private constructor(
    private readonly peers: Map<NodeId, PeerRecord>,
    private readonly retired: Set<string>,
    private readonly save: (record: unknown) => Promise<void>,
  ) {}

  static from(record: unknown, save: (record: unknown) => Promise<void>): Incarnations {
    const o = (record ?? {}) as { peers?: [NodeId, PeerRecord][]; retired?: string[] };
    return new Incarnations(new Map(o.peers ?? []), new Set(o.retired ?? []), save);
  }

  /**
   * Whether `hello`'s sender may talk to us; records a peer met for the first time (on disk,
   * before answering), with `appliedIndex`, how far this master had applied the log then.
   */
  async admit(hello: Hello, self: Identity, isMember: (name: NodeId) => boolean, appliedIndex: number): Promise<Admission> {
    if (hello.cluster !== self.cluster || (hello.clusterId !== null && self.clusterId !== null && hello.clusterId !== self.clusterId)) {
      return { ok: false, reason: 'cluster', message: `${self.member} belongs to cluster ${self.cluster}${self.clusterId === null ? '' : ` (id ${self.clusterId})`}, not to ${hello.cluster}${hello.clusterId === null ? '' : ` (id ${hello.clusterId})`}` };
    }
    if (hello.member === self.member || !isMember(hello.member)) {
      return { ok: false, reason: 'not-member', message: `${hello.member} is not a member of cluster ${self.cluster}` };
    }
    if (this.retired.has(hello.memberId)) {
      return { ok: false, reason: 'retired', message: `${hello.member} (member id ${hello.memberId}) was removed from the cluster; to come back it must start with an empty data directory and be added again` };
    }
    const known = this.peers.get(hello.member);
    if (known !== undefined) {
      if (known.memberId === hello.memberId) return { ok: true };
      return {
        ok: false,
        reason: 'incarnation',
        message: `${self.member} knows ${hello.member} as member ${known.memberId} (since ${known.since}), not as ${hello.memberId}: ${hello.member} lost the data it had`,
      };
    }
    const record: PeerRecord = { memberId: hello.memberId, since: new Date().toISOString(), seenAt: appliedIndex };
    this.peers.set(hello.member, record);
    try {
      await this.save(this.toRecord());
      return { ok: true };
    } catch (err) {
      if (this.peers.get(hello.member) === record) this.peers.delete(hello.member);
      return { ok: false, reason: 'busy', message: `${self.member} could not record ${hello.member} (${(err as Error).message}); retrying` };
    }
  }

  /**
   * A member was removed at log index `at`. When the removal names the incarnation it removed
   * (`memberId`), that one may never come back, whenever it was met. Removals without one
   * (written before they named it, or by a leader that never met the member) fall back to
   * when it was met: the incarnation met before `at` is retired, one met after is not the
   * removed one (so a removal replayed at start leaves a member added back since alone; but a
   * master that met everyone at index 0, catching up from empty, cannot tell).
   */
  async retire(name: NodeId, at: number, memberId?: string): Promise<void> {
    const known = this.peers.get(name);
    if (memberId !== undefined) {
      if (this.retired.has(memberId) && known?.memberId !== memberId) return;
      this.retired.add(memberId);
      if (known?.memberId === memberId) this.peers.delete(name);
      await this.save(this.toRecord());
      return;
    }
    if (known === undefined || (known.seenAt ?? 0) >= at) return;
    this.peers.delete(name);
    this.retired.add(known.memberId);
    await this.save(this.toRecord());
  }

  /** After installing a snapshot that names the member ids removed before it: those, exactly. */
  async retireIds(ids: readonly string[]): Promise<void> {
    const fresh = ids.filter((id) => !this.retired.has(id));
    if (fresh.length === 0) return;
    for (const id of fresh) this.retired.add(id);
    for (const [name, r] of [...this.peers]) if (this.retired.has(r.memberId)) this.peers.delete(name);
    await this.save(this.toRecord());
  }

  /** After installing a snapshot at index `at` that names no removed ids: members not in it were removed before it. */
  async retireAllBut(members: ReadonlySet<NodeId>, at: number): Promise<void> {
    const gone = [...this.peers].filter(([name, r]) => !members.has(name) && (r.seenAt ?? 0) < at).map(([name]) => name);
    for (const name of gone) {
      this.retired.add(this.peers.get(name)!.memberId);
      this.peers.delete(name);
    }
    if (gone.length > 0) await this.save(this.toRecord());
  }

  memberIdOf(name: NodeId): string | undefined {
    return this.peers.get(name)?.memberId;
  }

  private toRecord(): unknown {
    return { peers: [...this.peers], retired: [...this.retired] };
  }
}

/**
 * A master with a new member id waits here before taking part in Raft: until enough peers have
 * welcomed (recorded) it (`quorumsFor(members).fresh`, counted on the configuration its peers
 * report, or on the cluster file's list until one has). A peer that knows it under another id
 * refuses it; that is final only once the refusal has stood for `graceMs` (a peer that has not
 * yet applied the removal of a predecessor lifts it when it does). Waiting is safe either way:
 * the peers that recorded a predecessor never welcome us, and without them the quorum cannot
 * be reached. Peers that refuse for a passing reason, or cannot be reached, are tried again as
 * the transport redials.
 */
export class Announcement {
  private readonly welcomed = new Set<NodeId>();
  private readonly refused = new Map<NodeId, { message: string; since: number }>();
  private members: number;
  private reported: number | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly self: NodeId,
    listed: number,
    private readonly graceMs: number,
  ) {
    this.members = listed;
  }

  /** How many welcomes it takes now. */
  get needed(): number {
    return quorumsFor(this.members).fresh;
  }

  answer(peer: NodeId, answer: { readonly ok: true; readonly members?: readonly NodeId[] } | { readonly ok: false; readonly reason: Refusal; readonly message: string }): void {
    if (answer.ok) {
      this.welcomed.add(peer);
      this.refused.delete(peer);
      // The configuration as the peers know it, with us in it (we are in it, or joining it);
      // the largest reported, in case one peer lags behind a change that grew it.
      if (answer.members !== undefined && answer.members.length > 0) {
        const size = new Set([...answer.members, this.self]).size;
        this.reported = Math.max(this.reported ?? 0, size);
        this.members = this.reported;
      }
    } else if (isConclusive(answer.reason) && !this.refused.has(peer)) {
      this.refused.set(peer, { message: answer.message, since: Date.now() });
    }
    this.wake?.();
  }

  /** Resolves once enough peers welcomed us; rejects with a refusal that stood for the grace period. */
  async wait(progress: (welcomed: readonly NodeId[], needed: number) => void): Promise<void> {
    let last = Date.now();
    for (;;) {
      if (this.welcomed.size >= this.needed) return;
      const now = Date.now();
      for (const [peer, r] of this.refused) if (now - r.since >= this.graceMs) throw { peer, message: r.message };
      if (now - last >= 5000) {
        last = now;
        progress([...this.welcomed], this.needed);
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 100).unref();
      });
    }
  }
}
