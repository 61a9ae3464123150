import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ActivitiesInFlight } from '../../src/worker/activities-in-flight.js';

/** An activity that runs until it is cancelled, or until `finish()` when it ignores cancels. */
function runActivity(inFlight: ActivitiesInFlight, activityType: string, ignoreCancel = false) {
  const env = new MockActivityEnvironment(
    { activityType },
    { interceptors: [inFlight.interceptor] },
  );
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const run = env
    .run(async () => {
      if (ignoreCancel) return finished;
      await env.context.cancelled;
    })
    .catch(() => undefined);
  return { env, run, finish };
}

// A drain's logs name what the grace time cut short, so an operator knows which jobs retried on
// the next worker. Temporal's Core cancels them on its own clock: on a busy machine that comes
// before this process's timer, and an activity already unwound must still be named.
describe('activities in flight', () => {
  it('names as cut short the activities still running and those cancelled since the drain began, not those that finished', async () => {
    const inFlight = new ActivitiesInFlight();
    const before = runActivity(inFlight, 'cancelledBeforeDraining');
    before.env.cancel();
    await before.run;
    const finishing = runActivity(inFlight, 'finishing', true);
    const cancelled = runActivity(inFlight, 'cancelledByTheGraceTime');
    const running = runActivity(inFlight, 'stillRunning', true);
    assert.deepEqual(
      inFlight
        .list()
        .map((entry) => entry.activityType)
        .sort(),
      ['cancelledByTheGraceTime', 'finishing', 'stillRunning'],
    );

    inFlight.startDraining();
    finishing.finish();
    await finishing.run;
    cancelled.env.cancel();
    await cancelled.run;
    assert.deepEqual(
      inFlight.cutShort().map((entry) => entry.activityType),
      ['cancelledByTheGraceTime', 'stillRunning'],
    );
    running.finish();
    await running.run;
  });
});
