// A profile made real: the plugin instances of each extension point, built once from the
// registry. Unknown names or a plugin that lacks the extension point it is listed under are
// configuration mistakes, reported when the scheduler is constructed.
import type { Pod } from '@flotilla/api';
import type { NodeInfo } from './node-info.ts';
import type { PodInfo } from './pod-info.ts';
import { SUCCESS, type Status } from './status.ts';
import type { AnyPlugin, BindPlugin, FilterPlugin, FrameworkHandle, Profile, Registry, ScorePlugin } from './types.ts';

export interface WeightedScorePlugin {
  readonly plugin: ScorePlugin;
  readonly weight: number;
}

export class Framework {
  readonly filters: readonly FilterPlugin[];
  readonly scorers: readonly WeightedScorePlugin[];
  readonly binder: BindPlugin;

  constructor(registry: Registry, profile: Profile, handle: FrameworkHandle) {
    const instances = new Map<string, AnyPlugin>();
    const instance = (name: string): AnyPlugin => {
      let p = instances.get(name);
      if (p === undefined) {
        const factory = registry[name];
        if (factory === undefined) throw new Error(`scheduler plugin "${name}" is not registered (known: ${Object.keys(registry).join(', ')})`);
        p = factory(handle);
        instances.set(name, p);
      }
      return p;
    };
    const need = <T>(name: string, point: string, ok: (p: AnyPlugin) => boolean): T => {
      const p = instance(name);
      if (!ok(p)) throw new Error(`scheduler plugin "${name}" is listed under ${point} but has no ${point}()`);
      return p as T;
    };
    this.filters = profile.filter.map((n) => need<FilterPlugin>(n, 'filter', (p) => typeof p.filter === 'function'));
    this.scorers = profile.score.map((s) => ({ plugin: need<ScorePlugin>(s.name, 'score', (p) => typeof p.score === 'function'), weight: s.weight }));
    this.binder = need<BindPlugin>(profile.bind, 'bind', (p) => typeof p.bind === 'function');
  }

  /** The first failing filter's status, as kube-scheduler's RunFilterPlugins (one reason set per node). */
  runFilters(pod: PodInfo, node: NodeInfo): Status {
    for (const f of this.filters) {
      const s = f.filter(pod, node);
      if (s.code !== 'Success') return s;
    }
    return SUCCESS;
  }

  /** Weighted sum of the normalized scores, one per node of `nodes`. */
  runScores(pod: PodInfo, nodes: readonly NodeInfo[]): Float64Array {
    const totals = new Float64Array(nodes.length);
    const scores: number[] = new Array<number>(nodes.length);
    for (const { plugin, weight } of this.scorers) {
      for (let i = 0; i < nodes.length; i++) scores[i] = plugin.score(pod, nodes[i]!);
      plugin.normalizeScore?.(pod, scores);
      for (let i = 0; i < nodes.length; i++) totals[i]! += weight * scores[i]!;
    }
    return totals;
  }

  bind(pod: Pod, nodeName: string): Promise<Status> {
    return this.binder.bind(pod, nodeName);
  }
}
