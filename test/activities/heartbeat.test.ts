import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { whileHeartbeating } from '../../src/activities/heartbeat.js';

// Temporal times out an activity only when its heartbeats stop: heartbeats sent after a cancel
// would keep open, until its start-to-close timeout, an activity whose work ignored the abort.
describe('whileHeartbeating', () => {
  it('heartbeats while its work runs and stops once the activity is cancelled, though the work goes on', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const env = new MockActivityEnvironment();
    const sent: unknown[] = [];
    env.on('heartbeat', (details: unknown) => sent.push(details));
    let beat!: (details: unknown) => void;
    let finish!: () => void;
    let started!: () => void;
    const working = new Promise<void>((resolve) => (started = resolve));
    const run = env.run(() =>
      whileHeartbeating((given) => {
        beat = given;
        started();
        return new Promise<void>((resolve) => (finish = resolve));
      }, 1_000),
    );
    await working;

    beat({ step: 1 });
    t.mock.timers.tick(1_000);
    t.mock.timers.tick(1_000);
    assert.deepEqual(sent, [{ step: 1 }, { step: 1 }, { step: 1 }]);

    env.cancel();
    beat({ step: 2 });
    t.mock.timers.tick(10_000);
    assert.deepEqual(sent, [{ step: 1 }, { step: 1 }, { step: 1 }], 'a heartbeat after the cancel');
    finish();
    await run;
  });
});
