import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { keepHeartbeating, reportHeartbeat } from '../../src/activities/heartbeat.js';

/** An activity environment with the worker's heartbeat interceptor, recording what it sends. */
function heartbeatingEnvironment(
  t: TestContext,
  info: ConstructorParameters<typeof MockActivityEnvironment>[0],
) {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const env = new MockActivityEnvironment(info, {
    interceptors: [(context) => keepHeartbeating(context, 1_000)],
  });
  const sent: unknown[] = [];
  env.on('heartbeat', (details: unknown) => sent.push(details));
  return { env, sent };
}

/**
 * An activity body driven from the test: `report(details)` makes it report them, `finish()`
 * ends it; `running` resolves once it started.
 */
function drivenActivity() {
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  let next!: (command: { report: unknown } | 'finish') => void;
  const nextCommand = () =>
    new Promise<{ report: unknown } | 'finish'>((resolve) => (next = resolve));
  let handled!: () => void;
  const body = async () => {
    let command = nextCommand();
    started();
    for (;;) {
      const given = await command;
      if (given === 'finish') return;
      command = nextCommand();
      reportHeartbeat(given.report);
      handled();
    }
  };
  return {
    body,
    running,
    report: (details: unknown) =>
      new Promise<void>((resolve) => {
        handled = resolve;
        next({ report: details });
      }),
    finish: () => next('finish'),
  };
}

// Temporal takes an activity whose heartbeats stop for its heartbeat timeout for one on a lost
// worker and runs it again; it delivers a cancel only in answer to a heartbeat; heartbeats sent
// after a cancel would keep open, until its start-to-close timeout, an activity whose work
// ignored the abort.
describe('keepHeartbeating', () => {
  it('heartbeats from the start to the end of an activity with a heartbeat timeout, whatever it waits on, re-sending its details', async (t) => {
    const { env, sent } = heartbeatingEnvironment(t, {
      heartbeatTimeoutMs: 10_000,
      heartbeatDetails: { uploadId: 'from-the-last-attempt' },
    });
    const activity = drivenActivity();
    const run = env.run(activity.body);
    await activity.running;

    t.mock.timers.tick(1_000);
    assert.deepEqual(sent, [{ uploadId: 'from-the-last-attempt' }], 'the last attempt’s details');
    await activity.report({ uploadId: 'u', parts: 1 });
    t.mock.timers.tick(1_000);
    t.mock.timers.tick(1_000);
    assert.deepEqual(sent.slice(1), [
      { uploadId: 'u', parts: 1 },
      { uploadId: 'u', parts: 1 },
      { uploadId: 'u', parts: 1 },
    ]);
    activity.finish();
    await run;
    t.mock.timers.tick(5_000);
    assert.equal(sent.length, 4, 'a heartbeat after the activity ended');
  });

  it('stops heartbeating, reports included, once the activity is cancelled, though its work goes on', async (t) => {
    const { env, sent } = heartbeatingEnvironment(t, { heartbeatTimeoutMs: 10_000 });
    const activity = drivenActivity();
    const run = env.run(activity.body);
    await activity.running;
    t.mock.timers.tick(1_000);
    assert.equal(sent.length, 1);

    env.cancel();
    await activity.report({ step: 2 });
    t.mock.timers.tick(10_000);
    assert.equal(sent.length, 1, 'a heartbeat after the cancel');
    activity.finish();
    await run;
  });

  it('leaves alone an activity without a heartbeat timeout and a local activity', async (t) => {
    for (const info of [
      { heartbeatTimeoutMs: undefined },
      { heartbeatTimeoutMs: 10_000, isLocal: true },
    ]) {
      const { env, sent } = heartbeatingEnvironment(t, info);
      const activity = drivenActivity();
      const run = env.run(activity.body);
      await activity.running;
      t.mock.timers.tick(10_000);
      assert.deepEqual(sent, [], JSON.stringify(info));
      activity.finish();
      await run;
      t.mock.timers.reset();
    }
  });
});
