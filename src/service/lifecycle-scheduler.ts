import type { ServiceLogger } from './machine-core.js';
import type { MachineService } from './machine-service.js';

/**
 * Fires lifecycle deadlines. Deadlines live in the store (indexed), so a sweep every
 * `intervalMs` finds them after a restart too; one sweep runs at a time.
 */
export class LifecycleScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly service: MachineService,
    private readonly intervalMs: number,
    private readonly log: ServiceLogger,
  ) {}

  /** Start sweeping. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  /** Run one sweep now (or join the one in progress). */
  sweep(): Promise<void> {
    this.running ??= this.service
      .runDue()
      .catch((err) => this.log.error({ err }, 'lifecycle sweep failed'))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  /** Stop sweeping and wait for a sweep in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
