// @flotilla/raft/testing: the deterministic simulator, the safety checker and the in-memory
// test doubles, for this package's tests and for hosts that want to test against them.

export { Raft } from '../raft.ts';
export { SafetyChecker, SafetyViolation, entryKey, type NodeView } from './checker.ts';
export { SimNetwork, NO_FAULTS, type LinkFaults } from './network.ts';
export { Simulator, type SimEvent, type SimEventKind, type SimOptions } from './simulator.ts';
export {
  runSchedule,
  randomSchedule,
  checkLiveness,
  perform,
  DEFAULT_LIVENESS_TICKS,
  ELECTION_TICK,
  type Action,
  type RunOptions,
  type RunResult,
  type RunStats,
  type Schedule,
  type ScheduleOptions,
} from './schedule.ts';
