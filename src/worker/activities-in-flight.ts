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
        }
      },
    },
  });

  list(): ActivityInFlight[] {
    return [...this.running];
  }
}
