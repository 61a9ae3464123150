import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { mediaTaskQueueOf } from '../../src/media/processes.js';
import { findMediaTools } from '../../src/media/tools.js';
import type { RunningWorker } from '../../src/worker/worker.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import {
  multipartBody,
  renderTestPhoto,
  renderTestVideo,
  type FormFile,
} from '../fixtures/media.js';
import { createTestApi, testJwtSecret, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/eventually.js';
import { startTestWorker, testTemporal, uniqueTaskQueue } from '../support/temporal.js';

/** The steps that run ffmpeg on the worker. */
const mediaSteps = ['analyzeMedia', 'startVideoGeneration'];

// A worker allowed one ffmpeg at a time still finishes every vlog of a burst: the others wait
// their turn in Temporal, and no two media steps ever run at once.
describe('local vlogs with MEDIA_MAX_CONCURRENT_FFMPEG=1', () => {
  let test: TestDatabase;
  let api: TestApi;
  let worker: RunningWorker;
  const temporal = testTemporal();
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
    test = await createTestDatabase();
    api = await createTestApi({ db: test.db, temporal, taskQueue, env });
    worker = await startTestWorker(taskQueue, await createActivityDependencies(config, test.db));
  });
  after(async () => {
    await worker.stop();
    await api.app.close();
    await temporal.close();
    await test.drop();
  });

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
    const auth = await api.authFor('burst');
    const ids: string[] = [];
    for (let index = 0; index < 4; index += 1) {
      const form = multipartBody({ title: `Burst ${index}`, durationSeconds: '4' }, files);
      const response = await api.app.inject({
        method: 'POST',
        url: '/api/vlogs',
        headers: { authorization: auth, ...form.headers },
        payload: form.payload,
      });
      assert.equal(response.statusCode, 202, response.body);
      ids.push(response.json<{ id: string }>().id);
    }

    for (const id of ids) {
      const done = await eventually(
        async () => {
          const response = await api.app.inject({
            method: 'GET',
            url: `/api/vlogs/${id}`,
            headers: { authorization: auth },
          });
          return response.json<{ status: string; error: unknown }>();
        },
        (view) => ['completed', 'failed', 'cancelled'].includes(view.status),
        { what: `vlog ${id} finished`, timeoutMs: 180_000, intervalMs: 200 },
      );
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
    }

    // From the histories: where each media step was queued, and when it started and ended.
    const runs: { queue: string; start: number; end: number }[] = [];
    for (const id of ids) {
      const history = await temporal.client.workflow.getHandle(id).fetchHistory();
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
    for (const run of runs) assert.equal(run.queue, mediaTaskQueueOf(taskQueue));
    runs.sort((a, b) => a.start - b.start);
    for (let index = 1; index < runs.length; index += 1) {
      assert.ok(
        runs[index]!.start >= runs[index - 1]!.end,
        `media steps overlapped: ${JSON.stringify(runs)}`,
      );
    }
  });
});
