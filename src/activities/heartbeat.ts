import { Context } from '@temporalio/activity';

/**
 * Heartbeats every `intervalMs` while `work` runs, re-sending the latest details. Temporal
 * delivers a cancellation only in answer to a heartbeat, so an activity blocked on one long
 * provider call still learns of it in seconds (and aborts the call through its signal);
 * hangs are caught by the clients' own timeouts.
 */
export async function whileHeartbeating<T>(
  work: (beat: (details: unknown) => void) => Promise<T>,
  intervalMs = 3_000,
): Promise<T> {
  const context = Context.current();
  let latest: unknown = context.info.heartbeatDetails;
  const beat = (details: unknown) => {
    latest = details;
    context.heartbeat(details);
  };
  const timer = setInterval(() => context.heartbeat(latest), intervalMs);
  try {
    return await work(beat);
  } finally {
    clearInterval(timer);
  }
}
