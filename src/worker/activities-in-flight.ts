import type { Context } from '@temporalio/activity';
import type { ActivityInterceptors } from '@temporalio/worker';

/** One activity a worker process runs now. */
export interface ActivityInFlight {
  activityType: string;
  /** Unset for an activity started on its own, outside a workflow. */
  workflowId: string | undefined;
  attempt: number;
  taskQueue: string;
  /** When this attempt started on this process (ISO 8601). */
  startedAt: string;
}

/**
 * The activities a worker process is running, kept by an activity interceptor: a shutdown logs
 * what it waits for, what the grace time cut short, and what a forced exit left behind, so an
 * operator reading a deploy's logs knows which jobs retried on the next worker.
 */
export class ActivitiesInFlight {
  private readonly running = new Set<ActivityInFlight>();
  /** Once the worker drains: the activities that ended cancelled since. */
  private cancelledWhileDraining: ActivityInFlight[] | null = null;

  readonly interceptor = (context: Context): ActivityInterceptors => ({
    inbound: {
      execute: async (input, next) => {
        const { info } = context;
        const entry: ActivityInFlight = {
          activityType: info.activityType,
          workflowId: info.workflowExecution?.workflowId,
          attempt: info.attempt,
          taskQueue: info.taskQueue,
          startedAt: new Date().toISOString(),
        };
        this.running.add(entry);
        try {
          return await next(input);
        } finally {
          this.running.delete(entry);
          if (context.cancellationSignal.aborted) this.cancelledWhileDraining?.push(entry);
        }
      },
    },
  });

  list(): ActivityInFlight[] {
    return [...this.running];
  }

  /** From now on, remembers the activities that end cancelled (`cutShort`). */
  startDraining(): void {
    this.cancelledWhileDraining ??= [];
  }

  /**
   * What the end of the grace time cut short: the activities still running, and those the
   * worker already cancelled since it began to drain. Temporal's Core cancels them on its own
   * clock, which on a busy machine can run ahead of this process's timer.
   */
  cutShort(): ActivityInFlight[] {
    return [...(this.cancelledWhileDraining ?? []), ...this.running];
  }
}
