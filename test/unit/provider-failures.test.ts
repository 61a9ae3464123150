import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { msOptionalToNumber } from '@temporalio/common/lib/time.js';
import { readJsonAnswer, toFailure } from '../../src/activities/provider-calls.js';
import { FailureCode } from '../../src/jobs/failures.js';
import { ProviderError, transportFailure } from '../../src/providers/types.js';

/** An activity's context as toFailure reads it: scheduled `ago` ms back, with this schedule-to-close. */
function stepContext(scheduleToCloseTimeoutMs: number, ago = 0): Context {
  return {
    cancellationSignal: new AbortController().signal,
    info: { scheduleToCloseTimeoutMs, scheduledTimestampMs: Date.now() - ago },
  } as unknown as Context;
}

function nextDelayMs(error: ProviderError, context: Context): number | undefined {
  const failure = toFailure(error, context, 'gemini');
  assert.ok(failure instanceof ApplicationFailure);
  return msOptionalToNumber(failure.nextRetryDelay ?? undefined);
}

const unavailable = (hintMs?: number) =>
  new ProviderError(FailureCode.PROVIDER_UNAVAILABLE, 'Gemini: 503', true, hintMs);

// Temporal fails a step at once when its next retry would start past its schedule-to-close: a
// 503 asking for a day failed its job after one try of three.
describe("a provider's retry hint", () => {
  it('is held to the time the step has left, less a second, so the step waits and is retried', () => {
    const delay = nextDelayMs(unavailable(86_400_000), stepContext(90_000, 30_000));
    assert.ok(delay !== undefined && delay > 58_000 && delay <= 59_000, String(delay));
  });

  it('is taken as it is within that time, and held to 10 minutes without a schedule-to-close', () => {
    assert.equal(nextDelayMs(unavailable(5_000), stepContext(90_000)), 5_000);
    assert.equal(nextDelayMs(unavailable(86_400_000), stepContext(0)), 600_000);
  });

  it('is left out when no time is left, or the failure is not retried', () => {
    assert.equal(nextDelayMs(unavailable(5_000), stepContext(10_000, 9_500)), undefined);
    assert.equal(nextDelayMs(unavailable(), stepContext(90_000)), undefined);
    const refused = new ProviderError(FailureCode.PROVIDER_INVALID_ARGUMENT, 'no', false, 5_000);
    assert.equal(nextDelayMs(refused, stepContext(90_000)), undefined);
  });
});

describe('a call that got no error answer from the provider', () => {
  it("says what happened, not the HTTP client's words for it", () => {
    let parseError: unknown;
    try {
      JSON.parse('<html><body>502 Bad Gateway</body></html>');
    } catch (error) {
      parseError = error;
    }
    assert.match(
      transportFailure(parseError),
      /^the answer was not the provider's JSON \(a proxy's error page, say\): Unexpected token/,
    );
    assert.equal(
      transportFailure(new TypeError('terminated')),
      'the connection closed before the answer ended',
    );
    assert.equal(transportFailure(new Error('x'.repeat(600))), `${'x'.repeat(500)}…`);
  });
});

describe("a model's answer read as JSON", () => {
  const take = (json: unknown) => ({ value: json });
  it('says an empty answer is empty, apart from one that is not JSON', () => {
    assert.deepEqual(readJsonAnswer(' \n', take), { problem: 'the answer is empty' });
    assert.deepEqual(readJsonAnswer('{"items": [', take), { problem: 'the answer is not JSON' });
    assert.deepEqual(readJsonAnswer('{"items": []}', take), { value: { items: [] } });
  });
});
