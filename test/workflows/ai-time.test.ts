import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { SharedActivities } from '../../src/activities/index.js';
import type { AiActivities } from '../../src/kinds/ai/activities.js';
import type { AiJobRequest } from '../../src/kinds/ai/declaration.js';
import type { JobUpdate } from '../../src/jobs/contracts.js';
import type { AiJobInput } from '../../src/kinds/ai/declaration.js';
import { WorkflowFailedError } from '@temporalio/client';
import { retryJobUpdate } from '../../src/workflows/job-messages.js';
import { eventually } from '../support/eventually.js';
import { jobRecord } from '../support/jobs.js';
import { runWithTestActivities, startTimeSkipping } from '../support/time-skipping.js';

function aiInput(): AiJobInput {
  return {
    job: jobRecord<AiJobRequest['input']>({
      id: `ai-${crypto.randomUUID()}`,
      kind: 'ai',
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn Portuguese', maxItems: 3, language: 'en' },
    }),
    attempt: 1,
    seq: 0,
    settings: {
      timeoutMs: 300_000,
      heartbeatTimeoutMs: 60_000,
      retryWindowMs: 7 * 24 * 3_600_000,
      providerRetry: { initialIntervalMs: 10_000, maximumIntervalMs: 600_000, maximumAttempts: 3 },
    },
  };
}

/** The model is rate-limited (429, retry in 60 s) while `limited` says so, and answers otherwise. */
function testActivities(limited: () => boolean) {
  const updates: JobUpdate[] = [];
  const calls = { generate: 0 };
  const activities: Partial<SharedActivities & AiActivities> = {
    registerJob: async () => undefined,
    recordJobUpdates: async (written) => {
      updates.push(...written.updates);
    },
    generateAiItems: async () => {
      calls.generate += 1;
      if (limited()) {
        throw ApplicationFailure.create({
          message: 'rate limited',
          type: 'PROVIDER_RATE_LIMITED',
          nextRetryDelay: 60_000,
        });
      }
      return { items: [{ title: 'Take lessons', description: 'Twice a week.' }], model: 'test' };
    },
  };
  return { activities, updates, calls };
}

// The whole-job timeout is 300 s: the time-skipping server lets it pass in a moment of wall
// time (it skips the retry backoff between attempts; a running activity holds time still).
describe('AI job workflow over long (skipped) time', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await startTimeSkipping();
  });
  after(() => env?.teardown());

  it('ends `timeout` with JOB_TIMEOUT after 300 s of rate limiting, and a retry completes as attempt 2', async () => {
    let limited = true;
    const harness = testActivities(() => limited);
    const input = aiInput();
    const { value, error, wallMs } = await runWithTestActivities(
      env,
      'aiGenerationJob',
      {
        ...input,
        settings: {
          ...input.settings,
          providerRetry: { ...input.settings.providerRetry, maximumAttempts: 100 },
        },
      },
      harness.activities,
      async (handle) => {
        // The first call was scheduled with the deadline's timer: only then does skipping time
        // run the deadline out (skipped earlier, the timer would start after the skip).
        await eventually(
          () => Promise.resolve(harness.calls.generate),
          (calls) => calls > 0,
          { what: 'the first model call' },
        );
        await env.sleep(301_000);
        limited = false;
        assert.deepEqual(
          await handle.executeUpdate(retryJobUpdate, { args: [{ requestedBy: 'test' }] }),
          { attempt: 2 },
        );
      },
    );
    assert.equal(error, null);
    assert.equal(value?.items[0]?.title, 'Take lessons');
    const timedOut = harness.updates.find((update) => update.snapshot.status === 'timeout');
    assert.equal(timedOut?.snapshot.error?.code, 'JOB_TIMEOUT');
    assert.equal(timedOut?.snapshot.attempt, 1);
    assert.ok(
      Date.parse(timedOut?.snapshot.completedAt ?? '') -
        Date.parse(timedOut?.snapshot.startedAt ?? '') >=
        300_000,
    );
    // One call a minute for five minutes, then the retry's one.
    assert.ok(
      harness.calls.generate >= 5 && harness.calls.generate <= 7,
      `${harness.calls.generate} calls`,
    );
    const last = harness.updates.at(-1);
    assert.equal(last?.snapshot.status, 'completed');
    assert.equal(last?.snapshot.attempt, 2);
    assert.deepEqual(
      harness.updates.map((update) => update.seq),
      harness.updates.map((_, index) => index + 1),
    );
    assert.ok(wallMs < 60_000, `took ${wallMs} ms of wall time`);
  });

  it('fails the run when a projection write fails for good, rather than ending with its state unwritten', async () => {
    const harness = testActivities(() => false);
    const writes: string[] = [];
    const activities = {
      ...harness.activities,
      recordJobUpdates: async ({ updates }: { updates: JobUpdate[] }) => {
        writes.push(updates.map((update) => update.snapshot.status).join('+'));
        if (updates.some((update) => update.snapshot.status === 'completed'))
          throw ApplicationFailure.nonRetryable('the jobs table refused the row', 'TEST_REFUSED');
      },
    };
    const { error } = await runWithTestActivities(env, 'aiGenerationJob', aiInput(), activities);
    assert.ok(error instanceof WorkflowFailedError, String(error));
    assert.match(String(error.cause), /the jobs table refused/);
    // The first state, then the end: each written once, the refused one not retried.
    assert.deepEqual(writes, ['processing', 'completed']);
  });
});
