import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleSpec,
} from '@temporalio/client';

/** A workflow the worker keeps running every `intervalMs` through a Temporal Schedule. */
export interface RecurringWorkflow {
  /** Also the id of each run: at most one runs at a time. */
  scheduleId: string;
  workflowType: string;
  taskQueue: string;
  args: unknown[];
  intervalMs: number;
}

/**
 * Creates the schedule, or brings an existing one to these settings. Every worker start calls
 * it (`npm start` and `npm run worker` alike), so the schedule always runs what the latest
 * configuration says, and concurrent starts end with one schedule.
 */
export async function ensureRecurringWorkflow(
  client: Client,
  recurring: RecurringWorkflow,
): Promise<'created' | 'updated'> {
  const { scheduleId, workflowType, taskQueue, args, intervalMs } = recurring;
  const spec: ScheduleSpec = { intervals: [{ every: intervalMs }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType,
    workflowId: scheduleId,
    taskQueue,
    args,
  };
  // A run that outlasts the interval is not joined by a second one; a missed run is not made up.
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies });
    return 'created';
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
  }
  await client.schedule
    .getHandle(scheduleId)
    .update((previous) => ({ ...previous, spec, action, policies }));
  return 'updated';
}
