// The leader-only half of a master: the scheduler and the controllers run while this
// master is the Raft leader, and stop as soon as it is not (a leader cut off from the others
// steps down within an election timeout, by check-quorum). While running, everything they
// write is fenced to the term they started in, so a deposed leader's loops can never land
// a write after the next leader's loops have started (StoreNode.write, writeFence).
import { InformerFactory, LocalClient, type ApiServer } from '@flotilla/api';
import { DeploymentController, EndpointsController, EventTTLController, GarbageCollector, NamespaceController, NodeLifecycleController, ReplicaSetController, type Controller, type ControllerContext } from '@flotilla/controllers';
import { Scheduler } from '@flotilla/scheduler';
import type { StoreNode } from '@flotilla/store';
import type { Logger } from '@flotilla/wire';

export interface ControlPlaneOptions {
  readonly logger: Logger;
  /** Node lifecycle timings (cluster file nodeLifecycle:). */
  readonly nodeGracePeriodMs: number;
  readonly podEvictionMs: number;
  /** How long Events live after their last write (default 1 h, Kubernetes' --event-ttl). */
  readonly eventTtlMs?: number;
}

/** Who the loops act as: the API authorizes them like an admin, the log names them. */
const USER = { name: 'system:flotilla-control-plane', role: 'admin' as const };

interface Running {
  readonly term: number;
  readonly informers: InformerFactory;
  readonly loops: Controller[];
  stopped: boolean;
}

export class ControlPlane {
  private running: Running | undefined;
  private closed = false;
  private readonly onLeader = (e: { isLeader: boolean; term: number }): void => this.follow(e.isLeader, e.term);

  constructor(
    private readonly node: StoreNode,
    private readonly api: ApiServer,
    private readonly options: ControlPlaneOptions,
  ) {}

  /** Starts following leadership (and starts the loops now if this master already leads). */
  attach(): void {
    this.node.on('leader', this.onLeader);
    const now = this.node.leadership();
    this.follow(now.isLeader, now.term);
  }

  close(): void {
    this.closed = true;
    this.node.off('leader', this.onLeader);
    this.stop('the master is stopping');
  }

  private follow(isLeader: boolean, term: number): void {
    if (this.closed) return;
    if (this.running !== undefined && (!isLeader || this.running.term !== term)) this.stop(isLeader ? `leadership moved to term ${term}` : 'this master no longer leads');
    if (isLeader && this.running === undefined) void this.start(term);
  }

  private async start(term: number): Promise<void> {
    const began = Date.now();
    const { logger } = this.options;
    const client = new LocalClient(this.api, USER, { fence: () => term });
    const informers = new InformerFactory(client, logger);
    const ctx: ControllerContext = { client, informers, logger, now: Date.now };
    const loops: Controller[] = [
      new Scheduler({ client, informers, logger }),
      new ReplicaSetController(ctx),
      new DeploymentController(ctx),
      new NodeLifecycleController(ctx, { gracePeriodMs: this.options.nodeGracePeriodMs, evictionMs: this.options.podEvictionMs }),
      new EndpointsController(ctx),
      new GarbageCollector(ctx),
      new NamespaceController(ctx),
      new EventTTLController(ctx, this.options.eventTtlMs === undefined ? {} : { ttlMs: this.options.eventTtlMs }),
    ];
    const run: Running = { term, informers, loops, stopped: false };
    this.running = run;
    try {
      await informers.start();
    } catch (err) {
      if (run.stopped) return;
      // The caches could not be filled (the store is busy, or the term is ending): start
      // over shortly, if this master still leads.
      logger.warn({ term, err: (err as Error).message }, 'the control plane could not read the cluster; retrying');
      this.stop('its caches could not be filled');
      setTimeout(() => {
        const now = this.node.leadership();
        this.follow(now.isLeader, now.term);
      }, 100);
      return;
    }
    if (run.stopped) return;
    for (const loop of loops) loop.start();
    logger.info({ term, ms: Date.now() - began, loops: loops.map((l) => l.name) }, `the scheduler and controllers run on this master (term ${term})`);
  }

  private stop(why: string): void {
    const run = this.running;
    if (run === undefined) return;
    this.running = undefined;
    run.stopped = true;
    for (const loop of run.loops) loop.stop();
    run.informers.stop();
    this.options.logger.info({ term: run.term, why }, 'the scheduler and controllers stopped on this master');
  }
}
