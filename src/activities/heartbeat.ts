import { Context } from '@temporalio/activity';

/**
 * Heartbeats every `intervalMs` while `work` runs, re-sending the latest details. Temporal
 * delivers a cancellation only in answer to a heartbeat, so an activity blocked on one long
 * provider call still learns of it in seconds (and aborts the call through its signal);
 * hangs are caught by the clients' own timeouts.
 *
 * Once the activity's cancellation signal fires the heartbeats stop, `beat` included: `work`
 * must settle on that abort, and if some call in it does not, the heartbeat timeout ends the
 * activity instead of heartbeats keeping it open until its start-to-close timeout (a workflow
 * that waits for the cancelled activity would wait that long).
 */
export async function whileHeartbeating<T>(
  work: (beat: (details: unknown) => void) => Promise<T>,
  intervalMs = 3_000,
): Promise<T> {
  const context = Context.current();
  const signal = context.cancellationSignal;
  let latest: unknown = context.info.heartbeatDetails;
  const send = (details: unknown) => {
    if (!signal.aborted) context.heartbeat(details);
  };
  const beat = (details: unknown) => {
    latest = details;
    send(details);
  };
  const timer = setInterval(() => send(latest), intervalMs);
  try {
    return await work(beat);
  } finally {
    clearInterval(timer);
  }
}
