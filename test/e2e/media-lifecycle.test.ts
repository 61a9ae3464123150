// The media lifecycle on the embedded setup (local provider, local storage): a worker schedules
// the sweep as production does, the test triggers the schedule, and the sweep deletes the
// uploads and outputs of vlogs that ended (completed, cancelled, failed past their retry
// window) while keeping those of a vlog in flight and of a failed vlog that can be retried.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { taskQueueNames } from '../../src/capacity/task-queues.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { MediaSweepResult } from '../../src/jobs/contracts.js';
import type { VlogInput } from '../../src/kinds/vlog/declaration.js';
import { findMediaTools } from '../../src/media/tools.js';
import {
  ensureMediaSweepSchedule,
  mediaSweepScheduleId,
  type MediaSweepSettings,
} from '../../src/worker/media-sweep-schedule.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { mp4Bytes, multipartBody, renderTestPhoto, type FormFile } from '../fixtures/media.js';
import {
  startHarness,
  testJwtSecret,
  type Harness,
  type TestApi,
  type UserClient,
} from '../support/harness.js';
import { runScheduledOnce, uniqueTaskQueue } from '../support/temporal.js';

interface VlogView {
  id: string;
  status: string;
  videoUrl: string | null;
  mediaDeletedAt: string | null;
}

const retryWindowMs = 3_600_000;

describe('media lifecycle', { timeout: 240_000 }, () => {
  let h: Harness;
  /** An API whose jobs no worker runs: they stay in flight. */
  let idleApi: TestApi;
  let config: Config;
  let keeper: UserClient;
  let photo: FormFile;
  const taskQueue = uniqueTaskQueue('media-sweep');
  const sweep: MediaSweepSettings = {
    intervalMs: 3_600_000,
    retentionMs: 0,
    retryWindowMs,
    // Smaller than the vlogs swept at once, so a run takes several batches.
    batchSize: 2,
  };

  before(async () => {
    const tools = await findMediaTools();
    assert.ok(tools, 'ffmpeg ships with the npm dependencies');
    const env = {
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-lifecycle-${randomUUID()}`),
      AUTH_JWT_SECRET: testJwtSecret,
    };
    config = loadConfig(env);
    h = await startHarness({
      taskQueue,
      env,
      worker: (db) => createActivityDependencies(config, db),
      mediaSweep: sweep,
    });
    idleApi = await h.startApi({ env, taskQueue: uniqueTaskQueue('nobody-polls') });
    keeper = h.user('keeper');
    photo = {
      field: 'media',
      filename: 'sunrise.jpg',
      contentType: 'image/jpeg',
      bytes: await renderTestPhoto(tools.ffmpeg, 'jpg'),
    };
  });
  after(async () => {
    await h.temporal.client.schedule
      .getHandle(mediaSweepScheduleId(taskQueue))
      .delete()
      .catch(() => undefined);
    await h.stop();
  });

  async function accepted(as: UserClient, files: FormFile[]): Promise<VlogView> {
    const form = multipartBody({ title: 'Kept for a while', durationSeconds: '4' }, files);
    const vlog = await as.startJob<VlogView>('vlog', form);
    h.terminateOnStop(vlog.id);
    return vlog;
  }

  const getVlog = (id: string) => keeper.view<VlogView>('vlog', id);

  const waitFor = (id: string, status: string) =>
    keeper.awaitJob<VlogView>('vlog', id, (view) => view.status === status, {
      what: `vlog ${status}`,
      timeoutMs: 120_000,
    });

  /** Files stored for a vlog: its uploads, and whatever lies under its output folders. */
  async function storedFor(id: string): Promise<string[]> {
    const row = await h.db
      .selectFrom('jobs')
      .select('input')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    const files: string[] = [];
    for (const { key } of (row.input as VlogInput).media) {
      if (await stat(path.join(config.storageLocalDir, key)).catch(() => null)) files.push(key);
    }
    for (const folder of [`vlogs/${id}`, `renders/${id}`]) {
      const entries = await readdir(path.join(config.storageLocalDir, folder), {
        recursive: true,
      }).catch(() => []);
      files.push(...entries.map((entry) => `${folder}/${String(entry)}`));
    }
    return files.sort();
  }

  async function mediaDeletedAt(id: string): Promise<Date | null> {
    const row = await h.db
      .selectFrom('jobs')
      .select('media_deleted_at')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return row.media_deleted_at;
  }

  /** Triggers the schedule and waits for the sweep it starts to finish. */
  const runScheduledSweep = async () =>
    (await runScheduledOnce<MediaSweepResult>(h.temporal.client, mediaSweepScheduleId(taskQueue)))
      .result;

  it('is scheduled by the worker with the configured retention, on its task queues', async () => {
    const description = await h.temporal.client.schedule
      .getHandle(mediaSweepScheduleId(taskQueue))
      .describe();
    assert.equal(description.action.type, 'startWorkflow');
    assert.equal(description.action.workflowType, 'sweepExpiredMedia');
    assert.equal(description.action.taskQueue, taskQueue);
    // The sweep workflow runs on the workflows queue; its deletions go to the storage domain's.
    assert.deepEqual(description.action.args, [
      { taskQueue: taskQueueNames(taskQueue).storage, retentionMs: 0, retryWindowMs, batchSize: 2 },
    ]);
    assert.deepEqual(
      (description.spec.intervals ?? []).map((interval) => interval.every),
      [sweep.intervalMs],
    );
  });

  it('is brought up to date by workers starting at once with new settings', async () => {
    const schedule = h.temporal.client.schedule.getHandle(mediaSweepScheduleId(taskQueue));
    // As the worker passes them: the sweep's deletions go to the storage domain's queue.
    const current = { ...sweep, taskQueue: taskQueueNames(taskQueue).storage };
    const changed = { ...current, intervalMs: 2 * sweep.intervalMs, retentionMs: 1_000 };
    const outcomes = await Promise.all(
      [changed, changed].map((settings) =>
        ensureMediaSweepSchedule(h.temporal.client, taskQueue, settings),
      ),
    );
    assert.deepEqual(outcomes, ['updated', 'updated']);
    const description = await schedule.describe();
    assert.deepEqual(
      (description.spec.intervals ?? []).map((interval) => interval.every),
      [changed.intervalMs],
    );
    assert.equal(description.action.type, 'startWorkflow');
    assert.deepEqual(description.action.args, [
      { taskQueue: current.taskQueue, retentionMs: 1_000, retryWindowMs, batchSize: 2 },
    ]);
    assert.equal(await ensureMediaSweepSchedule(h.temporal.client, taskQueue, current), 'updated');
  });

  it('deletes what ended vlogs left once retention has passed, keeping what a retry or a running vlog needs', async () => {
    const completed = await accepted(keeper, [photo]);
    const cancelled = await accepted(keeper, [photo]);
    const cancel = await keeper.cancel('vlog', cancelled.id, { reason: 'changed my mind' });
    assert.equal(cancel.statusCode, 202, cancel.body);
    const failed = await accepted(keeper, [
      photo,
      { field: 'media', filename: 'broken.mp4', contentType: 'video/mp4', bytes: mp4Bytes() },
    ]);
    const failedToo = await accepted(keeper, [
      { field: 'media', filename: 'broken.mp4', contentType: 'video/mp4', bytes: mp4Bytes() },
    ]);
    const running = await accepted(idleApi.user('keeper'), [photo]);
    const done = await waitFor(completed.id, 'completed');
    await waitFor(cancelled.id, 'cancelled');
    await waitFor(failed.id, 'failed');
    await waitFor(failedToo.id, 'failed');

    // What each vlog stored is there to be deleted: uploads, and the video of the finished one.
    for (const vlog of [completed, cancelled, failed, failedToo, running])
      assert.ok((await storedFor(vlog.id)).length > 0, `nothing stored for ${vlog.id}`);
    assert.ok((await storedFor(completed.id)).includes(`vlogs/${completed.id}/video.mp4`));
    assert.ok(done.videoUrl);
    const { pathname, search } = new URL(done.videoUrl);
    const playing = await h.api.app.inject({ method: 'GET', url: `${pathname}${search}` });
    assert.equal(playing.statusCode, 200);
    const keptBefore = {
      failed: await storedFor(failed.id),
      running: await storedFor(running.id),
    };

    const first = await runScheduledSweep();
    assert.equal(first.jobs, 2, JSON.stringify(first));
    assert.equal(first.complete, true);
    for (const vlog of [completed, cancelled]) {
      assert.deepEqual(await storedFor(vlog.id), [], `media of ${vlog.status} vlog left`);
      assert.ok(await mediaDeletedAt(vlog.id));
    }
    // Inside its retry window a failed vlog keeps everything a retry reuses.
    assert.deepEqual(await storedFor(failed.id), keptBefore.failed);
    assert.equal(await mediaDeletedAt(failed.id), null);
    assert.deepEqual(await storedFor(running.id), keptBefore.running);

    // The links of a swept vlog say what happened instead of pretending it never existed.
    const expired = await h.api.app.inject({ method: 'GET', url: `${pathname}${search}` });
    assert.equal(expired.statusCode, 410, expired.body);
    assert.equal(expired.json<{ error: { code: string } }>().error.code, 'MEDIA_EXPIRED');
    const view = await getVlog(completed.id);
    assert.equal(view.status, 'completed');
    assert.equal(view.videoUrl, null);
    assert.ok(view.mediaDeletedAt);

    // Once the retry window is over (the vlogs ended long ago), the failed vlogs go too.
    await h.db
      .updateTable('jobs')
      .set({ completed_at: new Date(Date.now() - 2 * retryWindowMs) })
      .where('id', 'in', [failed.id, failedToo.id])
      .execute();
    const second = await runScheduledSweep();
    assert.deepEqual(second, {
      jobs: 2,
      deletedObjects: second.deletedObjects,
      complete: true,
    });
    for (const vlog of [failed, failedToo]) {
      assert.deepEqual(await storedFor(vlog.id), []);
      assert.ok(await mediaDeletedAt(vlog.id));
    }
    // A vlog in flight is never swept, however old.
    assert.deepEqual(await storedFor(running.id), keptBefore.running);
    assert.equal(await mediaDeletedAt(running.id), null);

    // A sweep with nothing left to do deletes nothing and changes no mark.
    const marked = await mediaDeletedAt(completed.id);
    assert.deepEqual(await runScheduledSweep(), { jobs: 0, deletedObjects: 0, complete: true });
    assert.deepEqual(await mediaDeletedAt(completed.id), marked);
  });
});
