// The extension points, one small interface each (kube-scheduler's framework/interface.go),
// and the registry from plugin name to factory. A plugin module ends with
// `satisfies FilterPlugin` (etc.) so the compiler checks it as Go checks `var _ FilterPlugin`.
import type { ApiClient, Pod } from '@flotilla/api';
import type { Logger } from '@flotilla/wire';
import type { NodeInfo } from './node-info.ts';
import type { PodInfo } from './pod-info.ts';
import type { Status } from './status.ts';

/** kube-scheduler's MaxNodeScore: every score plugin answers in [0, 100]. */
export const MAX_NODE_SCORE = 100;

export interface Plugin {
  readonly name: string;
}

/** Whether the pod can run on the node. Runs for many nodes per pod: keep it cheap. */
export interface FilterPlugin extends Plugin {
  filter(pod: PodInfo, node: NodeInfo): Status;
}

/** How much the pod would like the node, among the nodes that passed every filter. */
export interface ScorePlugin extends Plugin {
  score(pod: PodInfo, node: NodeInfo): number;
  /** Rescales this plugin's raw scores (one per feasible node, in place) into [0, 100]. */
  normalizeScore?(pod: PodInfo, scores: number[]): void;
}

/**
 * Assigns the pod to the node. 'Success': bound. 'UnschedulableAndUnresolvable': the pod can
 * no longer be bound by us (already bound, being deleted, gone): not retried. Anything else
 * is retried with backoff.
 */
export interface BindPlugin extends Plugin {
  bind(pod: Pod, nodeName: string): Promise<Status>;
}

export type AnyPlugin = Plugin & Partial<FilterPlugin & ScorePlugin & BindPlugin>;

/** What a plugin may use: the API and a logger (kube-scheduler's framework.Handle). */
export interface FrameworkHandle {
  readonly client: ApiClient;
  readonly logger: Logger;
}

export type PluginFactory = (handle: FrameworkHandle) => AnyPlugin;

export type Registry = Readonly<Record<string, PluginFactory>>;

export interface ScorePluginConfig {
  readonly name: string;
  readonly weight: number;
}

/** Which registered plugins run at each extension point, in order (a scheduler profile). */
export interface Profile {
  readonly filter: readonly string[];
  readonly score: readonly ScorePluginConfig[];
  readonly bind: string;
}
