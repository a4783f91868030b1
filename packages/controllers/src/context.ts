// What every controller is given: the API (through the master's fenced LocalClient), the
// shared informers, a logger and a clock.
import type { ApiClient, InformerFactory } from '@flotilla/api';
import type { Logger } from '@flotilla/wire';

export interface ControllerContext {
  readonly client: ApiClient;
  readonly informers: InformerFactory;
  readonly logger: Logger;
  /** Milliseconds since the epoch (tests may pass a fake clock). */
  readonly now: () => number;
}

/**
 * A leader-only loop. The constructor asks the informer factory for what it needs; start()
 * is called after the informers have synced; stop() ends every timer and queue it owns.
 */
export interface Controller {
  readonly name: string;
  start(): void;
  stop(): void;
}
