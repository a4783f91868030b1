// @flotilla/scheduler: the Scheduler (a leader-only loop in the Controller shape) and the
// plugin framework it runs, for wiring and for out-of-tree plugins.
export { Scheduler, type Controller, type SchedulerOptions, type SchedulerPlugins, type SchedulerMetrics } from './scheduler.ts';
export { SUCCESS, unschedulable, unresolvable, errorStatus, isSuccess, type Code, type Status } from './framework/status.ts';
export { MAX_NODE_SCORE, type Plugin, type FilterPlugin, type ScorePlugin, type BindPlugin, type AnyPlugin, type FrameworkHandle, type PluginFactory, type Registry, type Profile, type ScorePluginConfig } from './framework/types.ts';
export { NodeInfo } from './framework/node-info.ts';
export { newPodInfo, type PodInfo, type Resources } from './framework/pod-info.ts';
export { inTreeRegistry, defaultProfile } from './framework/registry.ts';
export { fitErrorMessage } from './core/fit-error.ts';
export { numFeasibleNodesToFind } from './core/schedule-pod.ts';
