// The comparison of applied hashes between masters on its own, over a hand-driven network:
// who raises CORRUPT (only a master a majority of the voters contradicts with one voice), who
// merely warns, and when a restarted master may serve (once a majority agreed with it at or
// past what it replayed from its disk).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { Frame } from '@flotilla/wire';
import { AppliedHashes, HashCheck } from '@flotilla/store';

interface Member {
  readonly id: string;
  readonly hashes: AppliedHashes;
  applied: number;
  chain: string[];
  check: HashCheck;
  corrupt: string | undefined;
  confirmed: boolean;
  warnings: string[];
}

/** Members whose logs are `logs[id]` (one string per entry); `up` are reachable. */
function mesh(logs: Record<string, string[]>, options: { gate?: Record<string, number>; up?: string[] } = {}): Map<string, Member> {
  const members = new Map<string, Member>();
  const up = new Set(options.up ?? Object.keys(logs));
  for (const [id, log] of Object.entries(logs)) {
    const hashes = new AppliedHashes();
    const chain: string[] = [''];
    for (let i = 0; i < log.length; i++) chain.push(createHash('sha256').update(chain[i]!).update(log[i]!).digest('hex'));
    const m: Member = { id, hashes, applied: 0, chain, check: undefined as unknown as HashCheck, corrupt: undefined, confirmed: false, warnings: [] };
    m.check = new HashCheck({
      self: id,
      hashes,
      applied: () => ({ index: m.applied, hash: m.chain[m.applied]! }),
      voters: () => Object.keys(logs),
      peers: () => [...up].filter((p) => p !== id),
      send: (to, c) => {
        const peer = members.get(to)!;
        peer.check.onAsk(id, c, (answer: Frame) => m.check.onTell(to, answer));
        return true;
      },
      alarms: () => [],
      logger: { info: () => undefined, warn: (_f: object, msg: string) => void m.warnings.push(msg), error: () => undefined, debug: () => undefined } as never,
      gateIndex: options.gate?.[id] ?? 0,
      onConfirmed: () => {
        m.confirmed = true;
      },
      onCorrupt: (msg) => {
        m.corrupt = msg;
      },
    });
    members.set(id, m);
  }
  return members;
}

function applyUpTo(m: Member, index: number): void {
  while (m.applied < index) {
    m.applied++;
    m.hashes.record(m.applied, m.chain[m.applied]!);
    m.check.onApplied(m.applied);
  }
}

const log = (n: number, damagedAt?: number): string[] => Array.from({ length: n }, (_, i) => (i + 1 === damagedAt ? `v${i + 1}-damaged` : `v${i + 1}`));

test('the one master that applied different bytes raises CORRUPT; the others do not', () => {
  const ms = mesh({ m1: log(20), m2: log(20, 7), m3: log(20) });
  for (const m of ms.values()) applyUpTo(m, 20);
  for (const m of ms.values()) m.check.ask();
  assert.match(ms.get('m2')!.corrupt ?? '', /differs from what m1, m3 applied/);
  assert.equal(ms.get('m1')!.corrupt, undefined);
  assert.equal(ms.get('m3')!.corrupt, undefined);
  assert.ok(ms.get('m1')!.warnings.some((w) => /m2's applied state at index 20 differs/.test(w)), 'the healthy ones say who differs');
});

test('a divergence before the compared index is still seen (the hash chains every entry)', () => {
  const ms = mesh({ m1: log(30), m2: log(30, 2), m3: log(30) });
  for (const m of ms.values()) applyUpTo(m, 30);
  ms.get('m2')!.check.ask();
  assert.ok(ms.get('m2')!.corrupt !== undefined);
});

test('with no majority voice nobody is declared corrupt: two against one with different hashes, or a peer down', () => {
  const split = mesh({ m1: log(10), m2: log(10, 3), m3: log(10, 4) });
  for (const m of split.values()) applyUpTo(m, 10);
  for (const m of split.values()) m.check.ask();
  for (const m of split.values()) assert.equal(m.corrupt, undefined, m.id);
  assert.ok(split.get('m1')!.warnings.length > 0);
  const down = mesh({ m1: log(10), m2: log(10, 3), m3: log(10) }, { up: ['m1', 'm2'] });
  for (const m of down.values()) applyUpTo(m, 10);
  down.get('m2')!.check.ask();
  assert.equal(down.get('m2')!.corrupt, undefined, 'one voice against one is not a majority of three');
});

test('a peer behind answers once it gets there; a restarted master serves only once a majority agreed at or past its disk', () => {
  const ms = mesh({ m1: log(50), m2: log(50), m3: log(50) }, { gate: { m2: 40 } });
  const m2 = ms.get('m2')!;
  applyUpTo(ms.get('m1')!, 30);
  applyUpTo(ms.get('m3')!, 30);
  applyUpTo(m2, 30);
  m2.check.ask();
  assert.equal(m2.confirmed, false, 'nothing confirmed before it replayed its disk');
  applyUpTo(m2, 45);
  m2.check.ask();
  assert.equal(m2.confirmed, false, 'the others have not reached 45 yet');
  applyUpTo(ms.get('m1')!, 45);
  assert.equal(m2.confirmed, true, 'm1 answered on reaching 45: with m2 that is two of three');
  assert.equal(m2.corrupt, undefined);
});

test('a restarted master whose disk was damaged past what checksums see is never confirmed, and is declared CORRUPT', () => {
  const ms = mesh({ m1: log(50), m2: log(50, 41), m3: log(50) }, { gate: { m2: 45 } });
  for (const m of ms.values()) applyUpTo(m, 45);
  ms.get('m2')!.check.ask();
  assert.equal(ms.get('m2')!.confirmed, false);
  assert.ok(ms.get('m2')!.corrupt !== undefined);
});

test('an answer for an index no longer kept is null, and decides nothing', () => {
  const ms = mesh({ m1: log(5000), m2: log(5000, 10), m3: log(5000) });
  applyUpTo(ms.get('m1')!, 5000);
  applyUpTo(ms.get('m3')!, 5000);
  applyUpTo(ms.get('m2')!, 11);
  ms.get('m2')!.check.ask();
  assert.equal(ms.get('m2')!.corrupt, undefined, 'm1 and m3 no longer hold index 11');
  applyUpTo(ms.get('m2')!, 5000);
  ms.get('m2')!.check.ask();
  assert.ok(ms.get('m2')!.corrupt !== undefined, 'but at a recent index they do');
});
