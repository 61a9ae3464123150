import { Context } from '@temporalio/activity';
import type { ActivityInterceptors } from '@temporalio/worker';

/** How often a running activity with a heartbeat timeout heartbeats. */
export const heartbeatIntervalMs = 3_000;

/** What each running activity last reported: its keep-alive heartbeats re-send it. */
const latestDetails = new WeakMap<Context, unknown>();

/**
 * Reports a running activity's progress: sent at once, and re-sent by its keep-alive heartbeats
 * until the next report, so a retry finds it in `heartbeatDetails` (a transfer's upload, a
 * submitted generation's operation). Nothing is sent once the activity is cancelled.
 */
export function reportHeartbeat(details: unknown): void {
  const context = Context.current();
  latestDetails.set(context, details);
  if (!context.cancellationSignal.aborted) context.heartbeat(details);
}

/**
 * Activity interceptor: an activity with a heartbeat timeout heartbeats every `intervalMs` from
 * its first line to its last, whatever it waits on (a provider call, a pool connection, a slow
 * store), re-sending its latest report. Temporal takes heartbeats that stop for the timeout as
 * a lost worker and runs the activity again, and delivers a cancel only in answer to one: an
 * activity that heartbeats only around its long steps would be run twice when a short one is
 * slow, and would not hear a cancel while it waits there.
 *
 * Once the activity's cancellation signal fires the heartbeats stop, reports included: the
 * activity must settle on that abort, and if some call in it does not, the heartbeat timeout
 * ends it instead of heartbeats keeping it open until its start-to-close timeout (a workflow
 * that waits for the cancelled activity would wait that long).
 */
export function keepHeartbeating(
  context: Context,
  intervalMs = heartbeatIntervalMs,
): ActivityInterceptors {
  return {
    inbound: {
      execute: async (input, next) => {
        const { info, cancellationSignal } = context;
        if (info.isLocal || !info.heartbeatTimeoutMs) return next(input);
        latestDetails.set(context, info.heartbeatDetails);
        const timer = setInterval(() => {
          if (!cancellationSignal.aborted) context.heartbeat(latestDetails.get(context));
        }, intervalMs);
        try {
          return await next(input);
        } finally {
          clearInterval(timer);
        }
      },
    },
  };
}
