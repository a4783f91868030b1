// The host-loop rule that lets a leader send before its fsync, checked on Readies of real
// RawNodes: it must hold a Ready back when that Ready already announces a commit of entries
// that are not on the leader's disk (a single voter with a learner), and let it go first
// otherwise (the usual case, with other voters).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStorage, RawNode, SeededRandom, bootstrapState, type Message, type Ready } from '@flotilla/raft';
import { sendsBeforePersisting } from '../src/pipeline.ts';

/** In-memory nodes with a strict host loop: persist, send, advance (no crashes). */
class Group {
  readonly nodes = new Map<string, { raw: RawNode; disk: MemoryStorage }>();
  private inbox: Message[] = [];

  constructor(voters: string[], learners: string[] = []) {
    const boot = bootstrapState(voters);
    for (const id of [...voters, ...learners]) {
      const disk = new MemoryStorage();
      if (voters.includes(id)) {
        disk.append(boot.entries);
        disk.setHardState(boot.hardState);
      }
      this.nodes.set(id, { raw: new RawNode({ id, storage: disk, random: new SeededRandom(id.charCodeAt(0)), electionTick: 10, heartbeatTick: 1 }), disk });
    }
  }

  node(id: string): RawNode {
    return this.nodes.get(id)!.raw;
  }

  /** Runs every node's Ready loop and delivers messages until nothing moves. */
  settle(): void {
    for (let round = 0; round < 100; round++) {
      let moved = false;
      for (const { raw, disk } of this.nodes.values()) {
        if (!raw.hasReady()) continue;
        moved = true;
        this.persist(raw.ready(), disk);
        raw.advance();
      }
      const batch = this.inbox;
      this.inbox = [];
      for (const m of batch) this.nodes.get(m.to)?.raw.step(m);
      if (!moved && batch.length === 0) return;
    }
  }

  persist(rd: Ready, disk: MemoryStorage): void {
    if (rd.snapshot !== undefined) disk.applySnapshot(rd.snapshot);
    disk.append(rd.entries);
    if (rd.hardState !== undefined) disk.setHardState(rd.hardState);
    this.inbox.push(...rd.messages);
  }
}

test('a single voter with a learner holds back a Ready that commits its own unpersisted entries', () => {
  const g = new Group(['a'], ['b']);
  g.settle();
  g.node('a').campaign();
  g.settle();
  g.node('a').proposeConfChange({ type: 'addLearner', nodeId: 'b' });
  g.settle();
  for (let i = 0; i < 5; i++) {
    g.node('a').tick();
    g.settle();
  }
  g.node('a').propose(new TextEncoder().encode('W'));
  const rd = g.node('a').ready();
  const stable = g.nodes.get('a')!.disk.lastIndex();
  const toLearner = rd.messages.find((m) => m.type === 'append' && m.to === 'b');
  assert.ok(toLearner !== undefined && toLearner.type === 'append');
  assert.ok(toLearner.commit > stable, 'the append already announces the new entry as committed');
  assert.equal(sendsBeforePersisting(rd, true, stable), false);
});

test('a leader with other voters sends its appends before persisting', () => {
  const g = new Group(['a', 'b', 'c']);
  g.settle();
  g.node('a').campaign();
  g.settle();
  for (let i = 0; i < 20; i++) {
    g.node('a').propose(new TextEncoder().encode(`w${i}`));
    const rd = g.node('a').ready();
    const stable = g.nodes.get('a')!.disk.lastIndex();
    assert.ok(rd.messages.some((m) => m.type === 'append'));
    assert.equal(sendsBeforePersisting(rd, true, stable), true, `write ${i}`);
    assert.equal(sendsBeforePersisting(rd, false, stable), false, 'a follower never sends first');
    g.persist(rd, g.nodes.get('a')!.disk);
    g.node('a').advance();
    g.settle();
  }
});
