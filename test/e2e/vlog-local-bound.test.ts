import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { taskQueueNames } from '../../src/capacity/task-queues.js';
import { findMediaTools } from '../../src/media/tools.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import {
  multipartBody,
  renderTestPhoto,
  renderTestVideo,
  type FormFile,
} from '../fixtures/media.js';
import { startHarness, testJwtSecret, type Harness } from '../support/harness.js';
import { uniqueTaskQueue } from '../support/temporal.js';

/** The steps that run ffmpeg on the worker. */
const mediaSteps = ['analyzeMedia', 'startVideoGeneration'];

// A worker allowed one ffmpeg at a time still finishes every vlog of a burst: the others wait
// their turn in Temporal, and no two media steps ever run at once.
describe('local vlogs with MEDIA_MAX_CONCURRENT_FFMPEG=1', () => {
  let h: Harness;
  const taskQueue = uniqueTaskQueue('vlog-local-bound');

  before(async () => {
    const env = {
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-local-bound-${randomUUID()}`),
      AUTH_JWT_SECRET: testJwtSecret,
      TEMPORAL_TASK_QUEUE: taskQueue,
      VLOG_PROVIDER: 'local',
      LOCAL_VIDEO_HEIGHT: '144',
      MEDIA_MAX_CONCURRENT_FFMPEG: '1',
    };
    const config = loadConfig(env);
    h = await startHarness({
      taskQueue,
      env,
      worker: (db) => createActivityDependencies(config, db),
    });
  });
  after(() => h.stop());

  it('completes every vlog of a burst, one media step at a time, on the media queue', async () => {
    const tools = await findMediaTools();
    assert.ok(tools, 'ffmpeg ships with the npm dependencies');
    const { ffmpeg } = tools;
    const files: FormFile[] = [
      {
        field: 'media',
        filename: 'photo.jpg',
        contentType: 'image/jpeg',
        bytes: await renderTestPhoto(ffmpeg, 'jpg', { size: '320x240' }),
      },
      {
        field: 'media',
        filename: 'clip.mp4',
        contentType: 'video/mp4',
        bytes: await renderTestVideo(ffmpeg, 2, { audio: true }),
      },
    ];
    const burst = h.user('burst');
    const ids: string[] = [];
    for (let index = 0; index < 4; index += 1) {
      const form = multipartBody({ title: `Burst ${index}`, durationSeconds: '4' }, files);
      ids.push((await burst.startJob('vlog', form)).id);
    }

    for (const id of ids) {
      const done = await burst.awaitJob<{ status: string; error: unknown }>(
        'vlog',
        id,
        (view) => ['completed', 'failed', 'cancelled'].includes(view.status),
        { what: `vlog ${id} finished`, timeoutMs: 180_000, intervalMs: 200 },
      );
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
    }

    // From the histories: where each media step was queued, and when it started and ended.
    const runs: { queue: string; start: number; end: number }[] = [];
    for (const id of ids) {
      const history = await h.temporal.client.workflow.getHandle(id).fetchHistory();
      const events = history.events ?? [];
      for (const event of events) {
        const scheduled = event.activityTaskScheduledEventAttributes;
        if (!scheduled || !mediaSteps.includes(scheduled.activityType?.name ?? '')) continue;
        const id = event.eventId!.toNumber();
        const started = events.find(
          (other) => other.activityTaskStartedEventAttributes?.scheduledEventId?.toNumber() === id,
        );
        const completed = events.find(
          (other) =>
            other.activityTaskCompletedEventAttributes?.scheduledEventId?.toNumber() === id,
        );
        const millis = (time: typeof event.eventTime) =>
          Number(time!.seconds!) * 1000 + Math.floor((time!.nanos ?? 0) / 1e6);
        runs.push({
          queue: scheduled.taskQueue!.name!,
          start: millis(started!.eventTime),
          end: millis(completed!.eventTime),
        });
      }
    }
    assert.equal(runs.length, ids.length * mediaSteps.length);
    for (const run of runs) assert.equal(run.queue, taskQueueNames(taskQueue).media);
    runs.sort((a, b) => a.start - b.start);
    for (let index = 1; index < runs.length; index += 1) {
      assert.ok(
        runs[index]!.start >= runs[index - 1]!.end,
        `media steps overlapped: ${JSON.stringify(runs)}`,
      );
    }
  });
});
