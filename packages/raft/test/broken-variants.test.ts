// The property suite must be able to fail. Each test runs the same checks against a core with
// one rule of Raft deliberately broken and asserts that they catch it; the correct core passes
// the very same runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RaftConfig } from '@flotilla/raft';
import { Raft, SafetyViolation, Simulator } from '@flotilla/raft/testing';
import { checkSchedules } from './schedules.ts';
import { TestNet, TestNode, storageWithLog } from './harness.ts';

/** Grants every vote request it sees: two leaders per term become possible (§5.2). */
class VotesTwicePerTerm extends Raft {
  protected override mayGrantVote(_canVote: boolean, candidateUpToDate: boolean): boolean {
    return candidateUpToDate;
  }
}

/** Votes without comparing logs: a leader may lack committed entries (§5.4.1). */
class IgnoresLogInVote extends Raft {
  protected override mayGrantVote(canVote: boolean, _candidateUpToDate: boolean): boolean {
    return canVote;
  }
}

/** Answers reads without confirming leadership: a deposed leader serves stale reads (thesis §6.4). */
class ReadsWithoutQuorum extends Raft {
  protected override readsNeedQuorum(): boolean {
    return false;
  }
}

/** Commits entries of earlier terms by counting replicas, the mistake of Figure 8 (§5.4.2). */
class CommitsPriorTermsByCounting extends Raft {
  protected override mayCommitByCounting(index: number): boolean {
    return this.log.term(index) !== undefined;
  }
}

const broken: [string, new (c: RaftConfig) => Raft, string][] = [
  ['grants two votes in a term', VotesTwicePerTerm, 'Election Safety'],
  ['ignores the log when voting', IgnoresLogInVote, 'Leader Completeness'],
  ['serves reads without a heartbeat round', ReadsWithoutQuorum, 'Linearizable Read'],
];

for (const [name, Variant, property] of broken) {
  test(`the random schedules catch a core that ${name}`, () => {
    for (const nodes of [3, 5]) {
      const outcome = checkSchedules({ name: `broken-${nodes}`, nodes, runs: 3000, seed: 20261128, save: false, createRaft: (c) => new Variant(c) });
      assert.ok(outcome.failed, `${nodes} nodes: 3000 schedules found nothing wrong`);
      assert.equal(outcome.result.violation.property, property, outcome.report);
    }
  });
}

/**
 * Figure 8 as a scripted schedule on the simulator, checked step by step like the random
 * ones. Returns the violation the checker raised, if any.
 */
function figure8(createRaft?: (c: RaftConfig) => Raft): { violation: SafetyViolation | undefined; commitAtC: number; k: number } {
  const sim = new Simulator({ seed: 8, nodes: 5, preVote: false, checkQuorum: false, maxSizePerMsg: 1, ...(createRaft === undefined ? {} : { createRaft }) });
  const core = (id: string) => sim.node(id).core!;
  const lead = (id: string): void => {
    for (let i = 0; i < 6 && sim.node(id).core?.role !== 'leader'; i++) {
      sim.campaign(id);
      sim.tick(1);
    }
    assert.equal(core(id).role, 'leader', `${id} should lead`);
  };
  let k = 0;
  let commitAtC = 0;
  try {
    // (a) n1 leads term 2 and appends entry k, which nobody else receives.
    lead('n1');
    sim.tick(1);
    sim.partition([['n1'], ['n2', 'n3', 'n4', 'n5']]);
    sim.propose('n1');
    k = core('n1').log.lastIndex();
    // (b) n1 crashes; n5 wins term 3 and appends its no-op at k, which reaches nobody.
    sim.crash('n1');
    sim.heal();
    sim.network.block((m) => m.from === 'n5' && (m.type === 'append' || m.type === 'heartbeat'));
    lead('n5');
    assert.equal(core('n5').log.term(k), 3);
    sim.crash('n5');
    sim.network.unblock();
    // (c) n1 restarts and wins term 4. Entry k (term 2) reaches n2, n3 and n4 — a majority —
    // but n1's own no-op at k+1 (term 4) reaches nobody.
    sim.restart('n1');
    sim.network.block(
      (m) => m.type === 'append' && m.from === 'n1' && m.entries.some((e) => e.index > k) && (sim.node(m.to).core?.log.matchTerm(m.index, m.logTerm) ?? false),
    );
    lead('n1');
    sim.tick(2);
    for (const id of ['n2', 'n3', 'n4']) assert.equal(core(id).log.term(k), 2, `${id} holds entry k of term 2`);
    commitAtC = core('n1').log.committed;
    sim.crash('n1');
    sim.network.unblock();
    // (d) n5 restarts; its last term (3) beats theirs (2), so it wins term 5 and replaces entry k.
    sim.restart('n5');
    lead('n5');
    sim.tick(3);
    assert.equal(core('n2').log.term(k), 3, 'entry k was replaced');
  } catch (err) {
    if (err instanceof SafetyViolation) return { violation: err, commitAtC, k };
    throw err;
  }
  return { violation: undefined, commitAtC, k };
}

test('Figure 8 scripted: the checker catches a core that commits earlier-term entries by counting', () => {
  const good = figure8();
  assert.equal(good.violation, undefined, good.violation?.message);
  assert.ok(good.commitAtC < good.k, 'the correct leader did not commit entry k in (c)');
  const bad = figure8((c) => new CommitsPriorTermsByCounting(c));
  assert.ok(bad.commitAtC >= bad.k, 'the broken leader committed entry k in (c)');
  assert.ok(bad.violation !== undefined, 'and the replacement of a committed entry was caught');
  assert.match(bad.violation.property, /Leader Completeness|Committed Entries Stay Committed|State Machine Safety/);
});

test('the §5.4.2 paper test fails against the same broken core', () => {
  // The Figure 8 paper test's situation (paper.test.ts): the broken leader commits entry 6.
  const ids5 = ['n1', 'n2', 'n3', 'n4', 'n5'];
  const logs = [[2], [], [], [], [3]];
  const nodes = ids5.map(
    (id, i) => new TestNode(id, storageWithLog(ids5, logs[i]!, { term: 3, commit: 5 }), { maxSizePerMsg: 1 }, i + 1, (c) => new CommitsPriorTermsByCounting(c)),
  );
  const net = new TestNet(nodes);
  net.isolate('n4');
  net.isolate('n5');
  net.drop((m) => m.type === 'append' && m.entries.some((e) => e.index === 7) && net.node(m.to).core.log.matchTerm(m.index, m.logTerm));
  net.campaign('n1');
  net.tick('n1', 3);
  assert.equal(net.node('n1').commit, 6, 'the paper test asserts 5 here, so it would fail');
});
