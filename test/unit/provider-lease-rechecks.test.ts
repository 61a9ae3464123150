import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { leaseRecheckPauseMs, shortLineRecheckMs } from '../../src/activities/provider-quota.js';
import { isThrottlePhase, throttlePhase, waitInWords } from '../../src/jobs/provider-throttle.js';

/** How many times a second a line of `waiting` jobs asks for a lease, together. */
function asksPerSecond(waiting: number, limit: number, recheckMs: number): number {
  let asks = 0;
  for (let ahead = 0; ahead < waiting; ahead += 1)
    asks += 1_000 / leaseRecheckPauseMs({ ahead, waiting, limit, recheckMs });
  return asks;
}

describe("the pause of a job waiting for a provider's lease", () => {
  // Each ask is a workflow task: ten thousand waiting vlogs asking every 20 minutes at most
  // (about twelve a second) held the worker's workflow slots from other users' fresh jobs.
  it('keeps the asks of the whole line below 2.65 × leases ÷ recheck a second, however long the line', () => {
    for (const [limit, recheckMs] of [
      [10, 10_000],
      [3, 500],
      [1, 15_000],
      [50, 10_000],
    ] as const) {
      const bound = (2.65 * limit * 1_000) / recheckMs;
      for (const waiting of [1, 10, 100, 1_000, 10_000, 100_000]) {
        const asks = asksPerSecond(waiting, limit, recheckMs);
        assert.ok(
          asks <= bound,
          `${waiting} waiting for ${limit} leases, recheck ${recheckMs} ms: ${asks.toFixed(2)} asks/s > ${bound}`,
        );
      }
    }
  });

  it('asks again after the recheck interval at the head of the line, later further back', () => {
    const place = { waiting: 50, limit: 10, recheckMs: 10_000 };
    assert.equal(leaseRecheckPauseMs({ ...place, ahead: 0 }), 10_000);
    assert.equal(leaseRecheckPauseMs({ ...place, ahead: 9 }), 10_000);
    assert.equal(leaseRecheckPauseMs({ ...place, ahead: 10 }), 40_000);
    assert.equal(leaseRecheckPauseMs({ ...place, ahead: 49 }), 250_000);
  });

  it('refreshes every place at least every 20 minutes while the line is short, and stretches that only as the line grows', () => {
    const short = { waiting: 1_000, limit: 10, recheckMs: 10_000 };
    assert.equal(leaseRecheckPauseMs({ ...short, ahead: 999 }), shortLineRecheckMs);
    const long = { waiting: 10_000, limit: 10, recheckMs: 10_000 };
    assert.equal(leaseRecheckPauseMs({ ...long, ahead: 9_999 }), 10_000_000);
  });

  it('says a wait in the unit a person reads it in', () => {
    assert.equal(waitInWords(0), '1 s');
    assert.equal(waitInWords(20_000), '20 s');
    assert.equal(waitInWords(119_000), '119 s');
    assert.equal(waitInWords(120_000), '2 min');
    assert.equal(waitInWords(20 * 60_000), '20 min');
    assert.equal(waitInWords(119 * 60_000), '119 min');
    assert.equal(waitInWords(10_000_000), '3 h');
  });

  // The API reads a wait from the phase to hint a longer poll interval.
  it('tells a phase of a wait for quota, or for an unanswered submission, from any other', () => {
    for (const what of ['video generation', 'media analysis', 'text generation']) {
      for (const retryAfterMs of [0, 90_000, 20 * 60_000, 10_000_000]) {
        for (const [reason, ahead] of [
          ['quota', 9_000],
          ['rate-limited', null],
          ['unanswered', null],
        ] as const) {
          const phase = throttlePhase(what, { throttled: true, reason, retryAfterMs, ahead });
          assert.ok(isThrottlePhase(phase), phase);
        }
      }
    }
    for (const phase of [
      null,
      '',
      'generating the video (operations/123)',
      'starting the video generation',
      'queued: 2 ahead',
      'waiting for video generation quota',
      'waiting for the video generation an unanswered submission may have started',
    ]) {
      assert.equal(isThrottlePhase(phase), false, String(phase));
    }
  });
});
