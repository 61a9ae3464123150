import { CancellationScope, patched, sleep } from '@temporalio/workflow';

/**
 * A run that takes this patch stops its attempt's deadline while it waits for a provider's
 * quota. Asked at the first such wait, so a run that never waits records nothing; runs that
 * waited before it keep counting their waits, as they did.
 */
const providerWaitsNotCounted = 'job-deadline-provider-waits-not-counted';

/** How long past its attempt's deadline a paid call may still be taken by a worker. */
const paidCallMarginMs = 20_000;

/**
 * The deadline of a job's attempt: a durable timer over the attempt's own time, which calls
 * `onExpired` (the lifecycle cancels the work) once it runs out. Time spent waiting for a
 * provider's quota (its line of operations, the cool-down after its 429) is not counted
 * (`notCounting`): a job is not failed for a provider's backlog it can do nothing about, and
 * its phase shows where it stands in the meantime.
 */
export class AttemptDeadline {
  private remainingMs: number;
  private runningSince: number | null = null;
  private timer: CancellationScope | null = null;
  /** Waits under way that do not count; the clock runs when there are none. */
  private waits = 0;
  private ended = false;
  private expiredValue = false;
  /** The scope the timers run in: the workflow's, not that of the work they limit. */
  private readonly parent = CancellationScope.current();

  constructor(
    ms: number,
    private readonly onExpired: () => void,
  ) {
    this.remainingMs = ms;
  }

  /** Whether the deadline ran out. */
  get expired(): boolean {
    return this.expiredValue;
  }

  /**
   * The `scheduleToCloseTimeout` of a paid call the attempt makes now: its own time left and
   * a margin. A call still in its queue past it is never made: when every worker is gone past
   * the deadline, the workflow task that would cancel the call waits for a worker too, and the
   * returning workers took both at once, paying for an answer no one got. The margin lets the
   * deadline end the job first, and a submission cancelled by it finish (10 s) and be recorded.
   */
  get paidCallTimeoutMs(): number {
    const running = this.runningSince === null ? 0 : Date.now() - this.runningSince;
    return Math.max(0, this.remainingMs - running) + paidCallMarginMs;
  }

  /** Starts the clock: the attempt's first stage begins. */
  start(): void {
    if (this.ended || this.runningSince !== null) return;
    this.runningSince = Date.now();
    const timer = new CancellationScope({ cancellable: true, parent: this.parent });
    this.timer = timer;
    void timer
      .run(async () => {
        await sleep(Math.max(1, this.remainingMs));
        this.expiredValue = true;
        this.onExpired();
      })
      .catch(() => undefined);
  }

  /** Runs `wait` (a wait for a provider's quota) with the clock stopped. */
  async notCounting<T>(wait: () => Promise<T>): Promise<T> {
    if (!patched(providerWaitsNotCounted)) return wait();
    this.waits += 1;
    this.stop();
    try {
      return await wait();
    } finally {
      this.waits -= 1;
      if (this.waits === 0) this.start();
    }
  }

  /** Stops the clock for good: the attempt has ended. */
  end(): void {
    this.ended = true;
    this.stop();
  }

  private stop(): void {
    if (this.runningSince === null) return;
    this.remainingMs -= Date.now() - this.runningSince;
    this.runningSince = null;
    this.timer?.cancel();
    this.timer = null;
  }
}
