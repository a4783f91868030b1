import type { RaftConfig } from '../config.ts';
import type { Raft } from '../raft.ts';
import { SeededRandom } from '../rand.ts';
import type { NodeId } from '../types.ts';
import { SafetyViolation } from './checker.ts';
import { NO_FAULTS } from './network.ts';
import { Simulator, type SimEvent } from './simulator.ts';

/**
 * One step of a fault schedule. Nodes are named by position (modulo the nodes that exist at
 * that moment), so a shrunk or mutated schedule always stays meaningful.
 */
export type Action =
  | { readonly kind: 'tick'; readonly ticks: number }
  | { readonly kind: 'propose'; readonly node: number | 'leader'; readonly count: number }
  | { readonly kind: 'read'; readonly node: number }
  | { readonly kind: 'crash'; readonly node: number }
  | { readonly kind: 'suspect'; readonly node: number }
  | { readonly kind: 'restart'; readonly node: number }
  | { readonly kind: 'partition'; readonly groups: readonly number[] }
  | { readonly kind: 'isolate'; readonly node: number }
  | { readonly kind: 'heal' }
  | { readonly kind: 'faults'; readonly drop: number; readonly duplicate: number; readonly maxDelay: number }
  | { readonly kind: 'addLearner' }
  | { readonly kind: 'addVoter' }
  | { readonly kind: 'promote'; readonly node: number }
  | { readonly kind: 'remove'; readonly node: number }
  | { readonly kind: 'transfer'; readonly node: number }
  | { readonly kind: 'compact'; readonly node: number; readonly keep: number };

export interface ScheduleOptions {
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly snapshotChunkSize: number;
}

/** A whole simulated run: cluster size, seeds, core options and the actions to take. */
export interface Schedule {
  readonly nodes: number;
  /** Seeds the network's fault model and every node's election timer. */
  readonly seed: number;
  readonly options: ScheduleOptions;
  readonly actions: readonly Action[];
}

export interface RunOptions {
  readonly createRaft?: (config: RaftConfig) => Raft;
  readonly onEvent?: (event: SimEvent) => void;
  /**
   * After the schedule the network heals and every node restarts; within this many ticks a
   * leader must be elected and commit a new proposal (the liveness property).
   */
  readonly livenessTicks?: number;
  /** Run the safety checker after every step (default true; benchmarks turn it off). */
  readonly check?: boolean;
}

export interface RunStats {
  readonly ticks: number;
  readonly elections: number;
  readonly committed: number;
  readonly proposals: number;
  readonly readsServed: number;
  readonly snapshotsInstalled: number;
  readonly crashes: number;
  readonly membershipChanges: number;
  readonly checks: number;
  /** Ticks the liveness phase needed to elect a leader and commit. */
  readonly recoveryTicks: number;
}

export type RunResult =
  | { readonly ok: true; readonly stats: RunStats }
  | {
      readonly ok: false;
      readonly violation: SafetyViolation;
      /** Index of the action during which it happened; actions.length means the liveness phase. */
      readonly actionIndex: number;
      readonly stats: RunStats;
    };

export const ELECTION_TICK = 10;
/** The liveness bound, in ticks (10 election timeouts); see README for how it was chosen. */
export const DEFAULT_LIVENESS_TICKS = 100 * ELECTION_TICK;
const MAX_EXTRA_NODES = 3;

/** Runs a schedule on a fresh simulator and reports the first violated property, if any. */
export function runSchedule(schedule: Schedule, run: RunOptions = {}): RunResult {
  const sim = new Simulator({
    seed: schedule.seed,
    nodes: schedule.nodes,
    electionTick: ELECTION_TICK,
    heartbeatTick: 1,
    ...schedule.options,
    ...(run.createRaft === undefined ? {} : { createRaft: run.createRaft }),
    ...(run.onEvent === undefined ? {} : { onEvent: run.onEvent }),
    ...(run.check === undefined ? {} : { check: run.check }),
  });
  let actionIndex = 0;
  let recoveryTicks = 0;
  try {
    for (; actionIndex < schedule.actions.length; actionIndex++) {
      perform(sim, schedule.actions[actionIndex]!, schedule.nodes);
    }
    recoveryTicks = checkLiveness(sim, run.livenessTicks ?? DEFAULT_LIVENESS_TICKS);
  } catch (err) {
    const violation = err instanceof SafetyViolation ? err : new SafetyViolation('Crash', errorText(err));
    return { ok: false, violation, actionIndex, stats: statsOf(sim, recoveryTicks) };
  }
  return { ok: true, stats: statsOf(sim, recoveryTicks) };
}

function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}\n${err.stack ?? ''}`;
  return String(err);
}

function statsOf(sim: Simulator, recoveryTicks: number): RunStats {
  return {
    ticks: sim.ticks,
    elections: sim.stats.elections,
    committed: sim.committedValues.size,
    proposals: sim.stats.proposals,
    readsServed: sim.stats.readsServed,
    snapshotsInstalled: sim.stats.snapshotsInstalled,
    crashes: sim.stats.crashes,
    membershipChanges: sim.stats.membershipChanges,
    checks: sim.checker.checks,
    recoveryTicks,
  };
}

function pick<T>(items: readonly T[], k: number): T | undefined {
  return items.length === 0 ? undefined : items[k % items.length];
}

export function perform(sim: Simulator, action: Action, founders: number): void {
  const ids = sim.ids();
  switch (action.kind) {
    case 'tick':
      sim.tick(action.ticks);
      return;
    case 'propose': {
      const target = action.node === 'leader' ? sim.leader()?.id : pick(ids, action.node);
      for (let i = 0; target !== undefined && i < action.count; i++) sim.propose(target);
      return;
    }
    case 'read': {
      const target = pick(ids, action.node);
      if (target !== undefined) sim.read(target);
      return;
    }
    case 'crash': {
      const target = pick(sim.liveNodes().map((n) => n.id), action.node);
      if (target !== undefined) sim.crash(target);
      return;
    }
    case 'suspect': {
      const target = pick(ids, action.node);
      if (target !== undefined) sim.suspectLeader(target);
      return;
    }
    case 'restart': {
      const down = ids.filter((id) => !sim.node(id).alive && !sim.node(id).retired);
      const target = pick(down, action.node);
      if (target !== undefined) sim.restart(target);
      return;
    }
    case 'partition': {
      const groups = new Map<number, NodeId[]>();
      ids.forEach((id, i) => {
        const g = action.groups[i % Math.max(1, action.groups.length)] ?? 0;
        groups.set(g, [...(groups.get(g) ?? []), id]);
      });
      if (groups.size > 1) sim.partition([...groups.values()]);
      return;
    }
    case 'isolate': {
      const target = pick(ids, action.node);
      if (target !== undefined) sim.partition([[target], ids.filter((id) => id !== target)]);
      return;
    }
    case 'heal':
      sim.heal();
      return;
    case 'faults':
      sim.setFaults({ drop: action.drop, duplicate: action.duplicate, maxDelay: action.maxDelay });
      return;
    case 'addLearner':
    case 'addVoter': {
      if (ids.length >= founders + MAX_EXTRA_NODES || sim.leader() === undefined) return;
      const id = sim.addNode();
      const refused = sim.changeMembership({ type: action.kind, nodeId: id });
      // Never part of any configuration: shut the empty node down again.
      if (refused !== undefined) sim.crash(id);
      return;
    }
    case 'promote': {
      const target = pick(sim.membership().learners, action.node);
      if (target !== undefined) sim.changeMembership({ type: 'addVoter', nodeId: target });
      return;
    }
    case 'remove': {
      const { voters, learners } = sim.membership();
      const target = pick([...voters, ...learners], action.node);
      if (target !== undefined) sim.changeMembership({ type: 'removeNode', nodeId: target });
      return;
    }
    case 'transfer': {
      const target = pick(sim.membership().voters, action.node);
      if (target !== undefined) sim.transferLeadership(target);
      return;
    }
    case 'compact': {
      const target = pick(ids, action.node);
      if (target !== undefined) sim.compact(target, action.keep);
      return;
    }
  }
}

/**
 * Liveness: heal the network, restart every node, then within `bound` ticks some leader must
 * commit a fresh proposal. Proposals are retried when leadership moves or a proposal stalls,
 * as a client would. Returns the ticks it took.
 */
export function checkLiveness(sim: Simulator, bound: number): number {
  sim.heal();
  sim.setFaults(NO_FAULTS);
  for (const id of sim.ids()) {
    const n = sim.node(id);
    if (!n.alive && !n.retired) sim.restart(id);
  }
  const start = sim.ticks;
  let pending: { value: string; leader: NodeId; at: number } | undefined;
  while (sim.ticks - start < bound) {
    sim.tick(1);
    if (pending !== undefined && sim.committedValues.has(pending.value)) return sim.ticks - start;
    const leader = sim.leader();
    if (leader === undefined) continue;
    const stale = pending === undefined || pending.leader !== leader.id || sim.ticks - pending.at > 2 * ELECTION_TICK;
    if (stale) {
      const result = sim.propose(leader.id);
      pending = 'value' in result ? { value: result.value, leader: leader.id, at: sim.ticks } : undefined;
    }
  }
  const roles = sim
    .liveNodes()
    .map((n) => `${n.id}:${n.core!.role}@${n.core!.term}`)
    .join(' ');
  throw new SafetyViolation('Liveness', `no proposal committed within ${bound} ticks after the network healed and all nodes restarted (${roles})`);
}

/**
 * A random schedule from a seed, for the `sim` demo: steady proposals and reads, and with
 * `faults` also crashes, partitions, lossy links, compaction and leadership transfers.
 */
export function randomSchedule(seed: number, nodes: number, ticks: number, faults: boolean): Schedule {
  const rng = new SeededRandom(seed);
  const actions: Action[] = [];
  let elapsed = 0;
  while (elapsed < ticks) {
    const step = 1 + rng.intn(5);
    actions.push({ kind: 'tick', ticks: Math.min(step, ticks - elapsed) });
    elapsed += step;
    if (rng.chance(0.5)) actions.push({ kind: 'propose', node: 'leader', count: 1 + rng.intn(3) });
    if (rng.chance(0.1)) actions.push({ kind: 'read', node: rng.intn(nodes) });
    if (!faults) continue;
    const r = rng.float();
    if (r < 0.02) actions.push({ kind: 'crash', node: rng.intn(nodes) });
    else if (r < 0.05) actions.push({ kind: 'restart', node: rng.intn(nodes) });
    else if (r < 0.06) actions.push({ kind: 'isolate', node: rng.intn(nodes) });
    else if (r < 0.07) actions.push({ kind: 'partition', groups: Array.from({ length: nodes }, () => rng.intn(2)) });
    else if (r < 0.09) actions.push({ kind: 'heal' });
    else if (r < 0.1) actions.push({ kind: 'faults', drop: rng.float() * 0.2, duplicate: rng.float() * 0.1, maxDelay: rng.intn(30) });
    else if (r < 0.11) actions.push({ kind: 'faults', drop: 0, duplicate: 0, maxDelay: 0 });
    else if (r < 0.12) actions.push({ kind: 'compact', node: rng.intn(nodes), keep: rng.intn(4) });
    else if (r < 0.125) actions.push({ kind: 'transfer', node: rng.intn(nodes) });
  }
  return {
    nodes,
    seed,
    options: { preVote: true, checkQuorum: true, maxSizePerMsg: 4096, maxInflightMsgs: 64, snapshotChunkSize: 256 },
    actions,
  };
}
