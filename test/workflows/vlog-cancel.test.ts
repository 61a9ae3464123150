import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { taskQueueNames } from '../../src/capacity/task-queues.js';
import { loadConfig } from '../../src/config.js';
import { findOwnedJob } from '../../src/db/jobs.js';
import { vlogOutputPrefix } from '../../src/jobs/storage-keys.js';
import { vlogKind, type VlogInput, type VlogJobInput } from '../../src/kinds/vlog/declaration.js';
import { createProviders } from '../../src/providers/index.js';
import type { MediaAnalyzer, VideoGenerator } from '../../src/providers/types.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { cancelJobUpdate } from '../../src/workflows/job-messages.js';
import type { vlogJob } from '../../src/workflows/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/eventually.js';
import { jobRecord } from '../support/jobs.js';
import { startTestWorker, testTemporal, uniqueTaskQueue } from '../support/temporal.js';

const { EventType, TimeoutType, WorkflowExecutionStatus } = proto.temporal.api.enums.v1;

const heartbeatTimeoutMs = msToNumber(vlogKind.activityPolicies.generation.heartbeatTimeout);

const analysis = {
  summary: 'A beach.',
  mood: 'calm',
  subjects: ['sea'],
  scenes: [{ mediaIndex: 0, description: 'The sea' }],
  videoPrompt: 'A calm sea at dawn, slow pan.',
};

// A cancelled render hears of the cancel through its heartbeats and must end; one whose work
// ignores the abort (a tool that never exits, a store that never answers) must not hold the
// vlog `generating` until its 30-minute start-to-close timeout. Its heartbeats stop with the
// cancel, its heartbeat timeout ends it, and only then does the cleanup run: never beside a
// render that may still store its video.
describe('vlog cancelled while its render ignores the cancel', () => {
  let test: TestDatabase;
  const temporal = testTemporal();

  before(async () => {
    test = await createTestDatabase();
  });
  after(async () => {
    await temporal.close();
    await test.drop();
  });

  it('stops the render’s heartbeats, lets its heartbeat timeout end it, and then cleans up', async () => {
    const mediaStorage = new LocalMediaStorage(
      path.join(os.tmpdir(), `vlogflow-cancel-${randomUUID()}`),
      { publicUrl: 'http://127.0.0.1', secret: 'test' },
    );
    const render = { abortedAt: 0, progressAfterAbort: 0 };
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const stuckRender: VideoGenerator = {
      name: 'stuck',
      async start(_request, context) {
        context.signal.addEventListener('abort', () => (render.abortedAt = Date.now()));
        // Progress goes on after the abort, as from a tool that did not hear it.
        const progress = setInterval(() => {
          if (context.signal.aborted) render.progressAfterAbort += 1;
          context.progress({ renderedSeconds: 1, totalSeconds: 8, percent: 12, speed: 1 });
        }, 200);
        await released;
        clearInterval(progress);
        throw new Error('released at the end of the test');
      },
      check: () => Promise.resolve({ state: 'running' }),
    };
    const analyzer: MediaAnalyzer = {
      name: 'fixed',
      analyze: () => Promise.resolve(JSON.stringify(analysis)),
    };
    const providers = {
      ...createProviders(loadConfig({}), { mediaStorage, mediaTools: null }),
      analyzer,
      videoGenerator: stuckRender,
    };
    const taskQueue = uniqueTaskQueue('vlog-cancel');
    const input: VlogJobInput = {
      job: jobRecord<VlogInput>({
        id: `vlog-${randomUUID()}`,
        kind: 'vlog',
        type: 'VLOG',
        input: {
          title: 'Stuck render',
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
        pollIntervalMs: 1_000,
        retryWindowMs: 60_000,
        providerRetry: { initialIntervalMs: 100, maximumIntervalMs: 1_000, maximumAttempts: 3 },
        taskQueues: taskQueueNames(taskQueue),
      },
    };
    // Something under the vlog's prefix for the cleanup to find, as a half-made video would be.
    const leftover = `${vlogOutputPrefix(input.job.id)}video.mp4`;
    await mediaStorage.putStream(leftover, Readable.from(['x']), 'video/mp4');

    const worker = await startTestWorker(taskQueue, { db: test.db, mediaStorage, providers });
    let cancelledAt = 0;
    let endedAt = 0;
    let error: unknown;
    try {
      const handle = await temporal.client.workflow.start<typeof vlogJob>('vlogJob', {
        taskQueue,
        workflowId: input.job.id,
        args: [input],
      });
      await eventually(
        async () => (await handle.describe()).raw.pendingActivities ?? [],
        (pending) =>
          pending.some((activity) => {
            const details = activity.heartbeatDetails?.payloads?.[0];
            return (
              activity.activityType?.name === 'startVideoGeneration' &&
              details !== undefined &&
              defaultPayloadConverter.fromPayload<{ render?: unknown }>(details).render !==
                undefined
            );
          }),
        { what: 'the render heartbeating', timeoutMs: 30_000, intervalMs: 50 },
      );
      cancelledAt = Date.now();
      await handle.executeUpdate(cancelJobUpdate, { args: [{ reason: 'stuck' }] });
      // Bounded: heartbeats that went on would keep the vlog open for the render's 30 minutes.
      await eventually(
        async () => (await handle.describe()).raw.workflowExecutionInfo?.status,
        (status) => status !== WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING,
        { what: 'the cancelled vlog closed', timeoutMs: heartbeatTimeoutMs + 20_000 },
      );
      error = await handle.result().then(
        () => null,
        (failure: unknown) => failure,
      );
      endedAt = Date.now();
    } finally {
      release();
      await worker.stop();
    }

    assert.ok(error instanceof WorkflowFailedError, String(error));
    assert.equal((error.cause as { type?: string } | undefined)?.type, 'CANCELLED');
    assert.ok(render.abortedAt >= cancelledAt, 'the cancel reached the render');
    assert.ok(render.progressAfterAbort > 0, 'the render went on reporting progress');
    // Heartbeats would have kept it open for 30 minutes; the heartbeat timeout ended it.
    const tookMs = endedAt - cancelledAt;
    assert.ok(tookMs >= heartbeatTimeoutMs - 1_000, `ended ${tookMs} ms after the cancel`);
    assert.ok(tookMs < heartbeatTimeoutMs + 10_000, `ended ${tookMs} ms after the cancel`);

    const events = (await temporal.client.workflow.getHandle(input.job.id).fetchHistory()).events;
    const scheduled = (name: string) =>
      (events ?? []).find(
        (event) => event.activityTaskScheduledEventAttributes?.activityType?.name === name,
      )?.eventId;
    const renderId = String(scheduled('startVideoGeneration'));
    const timedOut = (events ?? []).find(
      (event) =>
        event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT &&
        String(event.activityTaskTimedOutEventAttributes?.scheduledEventId) === renderId,
    );
    assert.ok(timedOut, 'the render did not time out');
    assert.equal(
      timedOut.activityTaskTimedOutEventAttributes?.failure?.timeoutFailureInfo?.timeoutType,
      TimeoutType.TIMEOUT_TYPE_HEARTBEAT,
    );
    const cleanup = scheduled('cleanupVlog');
    assert.ok(
      Number(cleanup) > Number(timedOut.eventId),
      'the cleanup was scheduled while the render still ran',
    );
    assert.equal(await mediaStorage.head(leftover), null, 'the cleanup ran');
    const row = await findOwnedJob(test.db, input.job.ownerId, input.job.id);
    assert.equal(row?.status, 'cancelled');
  });
});
