import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { SharedActivities } from '../../src/activities/index.js';
import type { VlogActivities } from '../../src/kinds/vlog/activities/index.js';
import type { JobUpdate } from '../../src/jobs/contracts.js';
import type { VlogInput, VlogJobInput } from '../../src/kinds/vlog/declaration.js';
import { throttlePhase, type ProviderThrottle } from '../../src/jobs/provider-throttle.js';
import { retryJobUpdate } from '../../src/workflows/job-messages.js';
import { sourceWorkflowBundle } from '../../src/worker/workflow-bundles.js';
import { jobRecord } from '../support/jobs.js';
import { runWithTestActivities, startTimeSkipping } from '../support/time-skipping.js';

function vlogInput(overrides: Partial<VlogJobInput['settings']> = {}): VlogJobInput {
  return {
    job: jobRecord<VlogInput>({
      kind: 'vlog',
      type: 'VLOG',
      input: {
        title: 'Long wait',
        prompt: null,
        style: null,
        aspectRatio: '16:9',
        durationSeconds: 8,
        media: [
          {
            key: 'uploads/x/00-a.png',
            name: 'a.png',
            contentType: 'image/png',
            kind: 'image',
            size: 10,
            sha256: 'x',
          },
        ],
      },
    }),
    attempt: 1,
    seq: 0,
    carried: { analysis: null, generation: null },
    settings: {
      deadlineMs: 30 * 60_000,
      pollIntervalMs: 15_000,
      retryWindowMs: 7 * 24 * 3_600_000,
      providerRetry: { initialIntervalMs: 10_000, maximumIntervalMs: 600_000, maximumAttempts: 3 },
      ...overrides,
    },
  };
}

/** Activities that answer at once; `checksUntilDone` decides how long Veo "renders". */
function testActivities(checksUntilDone: number | (() => boolean)) {
  const updates: JobUpdate[] = [];
  const calls = { start: 0, checks: 0, transfers: 0, cleanups: 0 };
  const activities: Partial<SharedActivities & VlogActivities> = {
    registerJob: async () => undefined,
    recordJobUpdates: async (written) => {
      updates.push(...written.updates);
    },
    analyzeMedia: async () => ({
      summary: 's',
      mood: 'm',
      subjects: [],
      scenes: [{ mediaIndex: 0, description: 'd' }],
      videoPrompt: 'a long prompt',
    }),
    admitVideoGeneration: async () => ({ admitted: true as const }),
    videoGenerationWaitersToWake: async () => [],
    startVideoGeneration: async (input) => {
      calls.start += 1;
      return {
        operationName: `operations/${input.jobId}-${input.attempt}`,
        outputUri: 'gs://b/p/',
      };
    },
    checkVideoGeneration: async () => {
      calls.checks += 1;
      const done =
        typeof checksUntilDone === 'number' ? calls.checks >= checksUntilDone : checksUntilDone();
      return done
        ? {
            done: true as const,
            video: { sourceUri: 'gs://b/p/sample_0.mp4', mimeType: 'video/mp4' },
          }
        : { done: false as const };
    },
    transferVideo: async () => {
      calls.transfers += 1;
      return { bytes: 1024, parts: 1, resumedParts: 0 };
    },
    describeVideo: async (input) => ({
      durationSeconds: input.requestedDurationSeconds,
      thumbnailKey: null,
      durationSource: 'provider' as const,
    }),
    cleanupVlog: async () => {
      calls.cleanups += 1;
      return { abortedUploads: 0, deletedObjects: 0 };
    },
  };
  return { activities, updates, calls };
}

/** A governor that keeps the vlog in Veo's line for `rounds` answers of ten minutes, then admits it. */
function inLineFor(rounds: number) {
  const line = {
    asked: 0,
    admit: async (): Promise<ProviderThrottle | { admitted: true }> =>
      ++line.asked <= rounds
        ? { throttled: true, reason: 'quota', retryAfterMs: 10 * 60_000, ahead: 3 }
        : { admitted: true },
  };
  return line;
}

// Veo renders for minutes and deadlines are half an hour: the time-skipping server lets the
// workflow's durable timers run that long in a moment of wall time.
describe('vlog workflow over long (skipped) time', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await startTimeSkipping();
  });
  after(() => env?.teardown());

  async function run(
    input: VlogJobInput,
    checksUntilDone: number | (() => boolean),
    during?: Parameters<typeof runWithTestActivities<'vlogJob'>>[4],
  ) {
    const harness = testActivities(checksUntilDone);
    const outcome = await runWithTestActivities(env, 'vlogJob', input, harness.activities, during);
    return { ...harness, ...outcome };
  }

  it('waits out a 20-minute generation on durable timers, checking every 15 s, and delivers', async () => {
    const { value, calls, updates, wallMs } = await run(vlogInput(), 80);
    assert.deepEqual(value, {
      videoKey: `vlogs/${updates[0]?.jobId}/video.mp4`,
      thumbnailKey: null,
      durationSeconds: 8,
      sizeBytes: 1024,
      mimeType: 'video/mp4',
    });
    assert.equal(calls.start, 1);
    assert.equal(calls.checks, 80);
    assert.equal(calls.transfers, 1);
    const statuses = updates.map((update) => update.snapshot.status);
    assert.deepEqual(
      [...new Set(statuses)],
      ['analyzing', 'generating', 'transferring', 'completed'],
    );
    const progress = updates.map((update) => update.snapshot.progress);
    assert.deepEqual(
      progress,
      [...progress].sort((a, b) => a - b),
    );
    assert.ok(
      Math.max(
        ...updates
          .filter((u) => u.snapshot.status === 'generating')
          .map((u) => u.snapshot.progress),
      ) <= 70,
    );
    assert.deepEqual(
      updates.map((update) => update.seq),
      updates.map((_, index) => index + 1),
    );
    assert.ok(wallMs < 60_000, `took ${wallMs} ms of wall time`);
  });

  // Each projection write is a local activity inside a workflow task: with thousands of vlogs in
  // flight, the writes are much of what the worker does to bring a vlog to Veo.
  it('writes its state once before the analysis and once as it enters the line for Veo', async () => {
    const throttles: ProviderThrottle[] = [
      { throttled: true, reason: 'quota', retryAfterMs: 20_000, ahead: 12 },
      { throttled: true, reason: 'quota', retryAfterMs: 10_000, ahead: 3 },
    ];
    const harness = testActivities(1);
    const steps: string[] = [];
    const write = (update: JobUpdate) =>
      steps.push(
        `write ${update.snapshot.status} ${update.snapshot.progress}% ${update.snapshot.phase}`,
      );
    let asked = 0;
    const activities: typeof harness.activities = {
      ...harness.activities,
      recordJobUpdates: async (written) => {
        written.updates.forEach(write);
      },
      analyzeMedia: async (input, ...rest) => {
        steps.push('analyze');
        return harness.activities.analyzeMedia!(input, ...rest);
      },
      admitVideoGeneration: async () => {
        steps.push('admit');
        return throttles[asked++] ?? { admitted: true as const };
      },
      startVideoGeneration: async (input) => {
        steps.push('start generation');
        return { operationName: `operations/${input.jobId}`, outputUri: 'gs://b/p/' };
      },
    };
    const { error } = await runWithTestActivities(env, 'vlogJob', vlogInput(), activities);
    assert.equal(error, null);
    assert.deepEqual(steps.slice(0, steps.indexOf('start generation') + 1), [
      'write analyzing 5% analyzing 1 media file',
      'analyze',
      'admit',
      `write generating 25% ${throttlePhase('video generation', throttles[0]!)}`,
      'admit',
      `write generating 25% ${throttlePhase('video generation', throttles[1]!)}`,
      'admit',
      'start generation',
    ]);
  });

  it('fails with VLOG_DEADLINE_EXCEEDED when the generation outlasts the deadline, then closes after the retry window', async () => {
    const input = vlogInput({ deadlineMs: 30 * 60_000 });
    const { error, updates, calls } = await run(input, Number.MAX_SAFE_INTEGER);
    const failed = updates.find((update) => update.snapshot.status === 'failed');
    assert.equal(failed?.snapshot.error?.code, 'VLOG_DEADLINE_EXCEEDED');
    // 30 minutes of checks every 15 s, give or take the first.
    assert.ok(calls.checks >= 115 && calls.checks <= 121, `${calls.checks} checks`);
    assert.equal(calls.transfers, 0);
    // No retry came within the window: the workflow ends failed with the same code.
    assert.ok(error instanceof WorkflowFailedError);
    assert.match(String(error.cause?.message), /did not finish within/);
  });

  // Thousands of vlogs in Veo's line wait for hours at a limit of ten generations at once: a
  // deadline that counted the wait would fail them all before their turn came.
  it("does not count hours in Veo's line and a 429's cool-down against its deadline", async () => {
    const harness = testActivities(2);
    const lineWaits = 18;
    const line = inLineFor(lineWaits);
    let submissions = 0;
    const activities: typeof harness.activities = {
      ...harness.activities,
      admitVideoGeneration: line.admit,
      startVideoGeneration: async (input, ...rest) =>
        ++submissions === 1
          ? {
              throttled: true as const,
              reason: 'rate-limited' as const,
              retryAfterMs: 40 * 60_000,
              ahead: null,
            }
          : harness.activities.startVideoGeneration!(input, ...rest),
    };
    const input = vlogInput({ deadlineMs: 30 * 60_000 });
    const { error } = await runWithTestActivities(env, 'vlogJob', input, activities);
    assert.equal(error, null);
    assert.equal(line.asked, lineWaits + 1);
    assert.equal(harness.updates.at(-1)?.snapshot.status, 'completed');
    assert.ok(
      harness.updates.every((update) => update.snapshot.error === null),
      'no deadline came',
    );
    // The deadline's timer stopped and started again around the waits: the run replays so.
    const history = await env.client.workflow.getHandle(input.job.id).fetchHistory();
    await Worker.runReplayHistory(
      { workflowBundle: await sourceWorkflowBundle(false) },
      history,
      input.job.id,
    );
  });

  it('counts its own time again once admitted: a generation that never ends still meets the deadline', async () => {
    const harness = testActivities(Number.MAX_SAFE_INTEGER);
    const activities: typeof harness.activities = {
      ...harness.activities,
      admitVideoGeneration: inLineFor(18).admit,
    };
    const { error } = await runWithTestActivities(
      env,
      'vlogJob',
      vlogInput({ deadlineMs: 30 * 60_000 }),
      activities,
    );
    assert.ok(error instanceof WorkflowFailedError);
    const failed = harness.updates.find((update) => update.snapshot.status === 'failed');
    assert.equal(failed?.snapshot.error?.code, 'VLOG_DEADLINE_EXCEEDED');
    // The 30 minutes are the attempt's own: checks every 15 s for about all of them.
    assert.ok(
      harness.calls.checks >= 115 && harness.calls.checks <= 121,
      `${harness.calls.checks} checks`,
    );
  });

  it('re-attaches a retry to the generation the timed-out attempt left running', async () => {
    const input = vlogInput({ deadlineMs: 30 * 60_000 });
    let rendered = false;
    const harness = await run(
      input,
      () => rendered,
      async (handle) => {
        await env.sleep(31 * 60_000);
        rendered = true;
        assert.deepEqual(
          await handle.executeUpdate(retryJobUpdate, { args: [{ requestedBy: 'test' }] }),
          {
            attempt: 2,
          },
        );
      },
    );
    assert.equal(harness.error, null);
    assert.ok(
      harness.updates.some((update) => update.snapshot.error?.code === 'VLOG_DEADLINE_EXCEEDED'),
    );
    const last = harness.updates.at(-1);
    assert.equal(last?.snapshot.status, 'completed');
    assert.equal(last?.snapshot.attempt, 2);
    assert.equal(harness.calls.start, 1, 'the running generation was submitted again');
    // Sequence numbers keep increasing across continue-as-new.
    assert.deepEqual(
      harness.updates.map((update) => update.seq),
      harness.updates.map((_, index) => index + 1),
    );
  });

  // A look at a paid generation that failed a few times (the database away for seconds, which
  // the provider backoff's three attempts did not outlast) failed the vlog for good and marked
  // the generation failed, so its retry paid Veo for another.
  it('keeps looking at a paid generation through failures of the look itself, and delivers', async () => {
    const harness = testActivities(1);
    let failures = 0;
    const check = harness.activities.checkVideoGeneration!;
    harness.activities.checkVideoGeneration = async (input) => {
      if (failures < 8) {
        failures += 1;
        const outage = new Error('database "vlogflow" is not currently accepting connections');
        outage.name = 'DatabaseError';
        throw outage;
      }
      return check(input);
    };
    const outcome = await runWithTestActivities(env, 'vlogJob', vlogInput(), harness.activities);
    assert.equal(outcome.error, null);
    assert.equal(failures, 8);
    assert.equal(harness.updates.at(-1)?.snapshot.status, 'completed');
    assert.equal(harness.calls.start, 1);
  });

  // An error no step classified named its class as the job's code and said what only operators
  // should read (the database's name).
  it('fails with JOB_FAILED, naming only the class, when a step fails with an error of no failure type', async () => {
    const harness = testActivities(1);
    // As node-postgres throws it: the failure's type is the error's class.
    class DatabaseError extends Error {}
    harness.activities.analyzeMedia = async () => {
      throw new DatabaseError('database "vlogflow_prod" is not currently accepting connections');
    };
    await runWithTestActivities(env, 'vlogJob', vlogInput(), harness.activities, async () => {
      await env.sleep(10 * 60_000);
    });
    const failed = harness.updates.find((update) => update.snapshot.status === 'failed');
    assert.deepEqual(failed?.snapshot.error, {
      code: 'JOB_FAILED',
      message:
        "A step failed unexpectedly (DatabaseError); its details are in the job's Temporal history",
    });
  });

  it("leaves a generation that may still run for a retry to re-attach to, unless the provider's verdict ended it", async () => {
    for (const { failure, submissions } of [
      {
        failure: ApplicationFailure.nonRetryable('Permission denied', 'PROVIDER_PERMISSION_DENIED'),
        submissions: 1,
      },
      {
        failure: ApplicationFailure.nonRetryable(
          'The video generation failed',
          'GENERATION_FAILED',
        ),
        submissions: 2,
      },
    ]) {
      const harness = testActivities(1);
      let refused = false;
      const check = harness.activities.checkVideoGeneration!;
      harness.activities.checkVideoGeneration = async (input) => {
        if (refused) return check(input);
        refused = true;
        throw failure;
      };
      const outcome = await runWithTestActivities(
        env,
        'vlogJob',
        vlogInput(),
        harness.activities,
        async (handle) => {
          await env.sleep(60_000);
          assert.ok(
            harness.updates.some((update) => update.snapshot.error?.code === failure.type),
            failure.type ?? '',
          );
          await handle.executeUpdate(retryJobUpdate, { args: [{ requestedBy: 'test' }] });
        },
      );
      assert.equal(outcome.error, null, failure.type ?? '');
      assert.equal(harness.updates.at(-1)?.snapshot.status, 'completed', failure.type ?? '');
      assert.equal(harness.calls.start, submissions, failure.type ?? '');
    }
  });

  // A retry's run carries the analysis, so its first workflow task asks the governor for a turn
  // while its first projection write runs: two local activities at once. When they end in
  // separate activations the run goes on as each ends; a replay hands both back in one. The
  // run's commands must come out in the same order either way, or the run cannot be replayed,
  // and a later retry of it (an Update on a run that no longer replays) is never answered.
  it('replays a retry whose turn is granted before its first write ends', async () => {
    const harness = testActivities(1);
    const activities: typeof harness.activities = {
      ...harness.activities,
      recordJobUpdates: async (written) => {
        await delay(300);
        await harness.activities.recordJobUpdates!(written);
      },
    };
    const input: VlogJobInput = {
      ...vlogInput(),
      attempt: 2,
      seq: 4,
      carried: {
        analysis: {
          summary: 's',
          mood: 'm',
          subjects: [],
          scenes: [{ mediaIndex: 0, description: 'd' }],
          videoPrompt: 'carried prompt',
        },
        generation: { operationName: 'operations/first', attempt: 1, state: 'failed', video: null },
      },
    };
    const { error } = await runWithTestActivities(env, 'vlogJob', input, activities);
    assert.equal(error, null);
    const history = await env.client.workflow.getHandle(input.job.id).fetchHistory();
    await Worker.runReplayHistory(
      { workflowBundle: await sourceWorkflowBundle(false) },
      history,
      input.job.id,
    );
  });
});
