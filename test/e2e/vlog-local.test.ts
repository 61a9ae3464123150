import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { loadConfig, type Config } from '../../src/config.js';
import { readJobEvents } from '../../src/db/job-events.js';
import { localRenderPrefix, vlogOutputPrefix } from '../../src/jobs/storage-keys.js';
import { findMediaTools, type MediaTools, type RenderProgress } from '../../src/media/tools.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import {
  mp4Bytes,
  multipartBody,
  pngBytes,
  renderTestPhoto,
  renderTestVideo,
  type FormFile,
} from '../fixtures/media.js';
import { eventually } from '../support/eventually.js';
import { startHarness, testJwtSecret, type Harness, type UserClient } from '../support/harness.js';
import { processesWorkingIn } from '../support/processes.js';
import { uniqueTaskQueue } from '../support/temporal.js';
import { installPacedFfmpeg, probeVideo, type PacedFfmpeg } from '../support/video.js';

interface VlogView {
  id: string;
  status: string;
  progress: number;
  error: { code: string; message: string } | null;
  videoUrl: string | null;
  thumbnailUrl: string | null;
  durationSeconds: number | null;
}

// The embedded setup a newcomer gets from `npm start`: no Gemini key, no Vertex project, no
// buckets. The local provider is selected on its own, and the whole pipeline runs on ffmpeg.
describe('vlogs with no cloud account (the local provider)', () => {
  let tools: MediaTools;
  let paced: PacedFfmpeg;
  const pathBefore = process.env['PATH'];
  let h: Harness;
  let newcomer: UserClient;
  let config: Config;
  const taskQueue = uniqueTaskQueue('vlog-local');
  const media: Record<string, FormFile> = {};

  before(async () => {
    const found = await findMediaTools();
    assert.ok(found, 'ffmpeg ships with the npm dependencies');
    tools = found;
    // The worker finds this ffmpeg first: as fast as the real one until a test paces it.
    paced = await installPacedFfmpeg(found);
    process.env['PATH'] = `${paced.dir}${path.delimiter}${pathBefore ?? ''}`;
    const env = {
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-local-${randomUUID()}`),
      AUTH_JWT_SECRET: testJwtSecret,
      TEMPORAL_TASK_QUEUE: taskQueue,
    };
    config = loadConfig(env);
    h = await startHarness({
      taskQueue,
      env,
      worker: (db) => createActivityDependencies(config, db),
    });
    newcomer = h.user('newcomer');
    const file = (filename: string, contentType: string, bytes: Buffer): FormFile => ({
      field: 'media',
      filename,
      contentType,
      bytes,
    });
    media['sunrise'] = file(
      'sunrise.jpg',
      'image/jpeg',
      await renderTestPhoto(tools.ffmpeg, 'jpg'),
    );
    media['friends'] = file(
      'friends.png',
      'image/png',
      await renderTestPhoto(tools.ffmpeg, 'png', { size: '360x640', source: 'color=c=orange' }),
    );
    media['waves'] = file(
      'waves.mp4',
      'video/mp4',
      await renderTestVideo(tools.ffmpeg, 4, { audio: true }),
    );
  });
  after(async () => {
    await h.stop();
    process.env['PATH'] = pathBefore;
    await paced.remove();
  });

  const accepted = (fields: Record<string, string>, files: FormFile[]) =>
    newcomer.startJob<VlogView>('vlog', multipartBody(fields, files));

  const isTerminal = (view: VlogView) => ['completed', 'failed', 'cancelled'].includes(view.status);

  function waitFor(id: string, done: (view: VlogView) => boolean, what: string) {
    return newcomer.awaitJob('vlog', id, done, { what, timeoutMs: 120_000 });
  }

  /** A link the API signed, fetched through the API itself (its public URL is not reachable). */
  async function download(url: string): Promise<Buffer> {
    const { pathname, search } = new URL(url);
    // Signed links carry their own authority: no token.
    const response = await h.api.app.inject({ method: 'GET', url: `${pathname}${search}` });
    assert.equal(response.statusCode, 200);
    return response.rawPayload;
  }

  /** The statuses the workflow projected, in order, read from the job's event log. */
  async function projectedStatuses(id: string): Promise<string[]> {
    const events = await readJobEvents(h.db, [{ jobId: id, afterSeq: 0 }], 1_000);
    const statuses: string[] = [];
    for (const { event } of events) {
      if (statuses.at(-1) !== event.status) statuses.push(event.status);
    }
    return statuses;
  }

  async function storedKeys(prefix: string): Promise<string[]> {
    const entries = await readdir(path.join(config.storageLocalDir, prefix), {
      recursive: true,
    }).catch(() => []);
    return entries.map(String);
  }

  it('turns two photos and a clip into a 720p MP4 of the requested length', async () => {
    const vlog = await accepted({ title: 'Beach day', durationSeconds: '4', aspectRatio: '16:9' }, [
      media['sunrise']!,
      media['friends']!,
      media['waves']!,
    ]);
    const done = await waitFor(vlog.id, isTerminal, 'vlog finished');
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual(await projectedStatuses(vlog.id), [
      'analyzing',
      'generating',
      'transferring',
      'completed',
    ]);

    assert.ok(done.videoUrl);
    const video = await probeVideo(tools.ffprobe, await download(done.videoUrl));
    assert.deepEqual(video.video, { codec: 'h264', width: 1280, height: 720 });
    assert.deepEqual(video.audio, { codec: 'aac' });
    assert.ok(Math.abs(video.durationSeconds - 4) < 0.05, `${video.durationSeconds} s`);
    assert.equal(done.durationSeconds, 4);
    assert.ok(done.thumbnailUrl);
    const thumbnail = await download(done.thumbnailUrl);
    assert.equal(thumbnail.subarray(0, 3).toString('hex'), 'ffd8ff', 'the thumbnail is a JPEG');
    // Nothing of the render is left on the worker's disk.
    assert.deepEqual(await readdir(config.renderWorkDir), []);
    // The render was moved to the delivery key, not copied: one copy of the video is stored.
    const transfer = (await h.temporal.client.workflow.getHandle(vlog.id).fetchHistory()).events
      ?.map((event) => event.activityTaskScheduledEventAttributes)
      .find((scheduled) => scheduled?.activityType?.name === 'transferVideo');
    const { sourceUri } = defaultPayloadConverter.fromPayload<{ sourceUri: string }>(
      transfer!.input!.payloads![0]!,
    );
    assert.ok(sourceUri.startsWith(`media:renders/${vlog.id}/`), sourceUri);
    assert.deepEqual(await storedKeys(`renders/${vlog.id}`), []);
    assert.deepEqual(
      (await storedKeys(`vlogs/${vlog.id}`)).filter((name) => !name.endsWith('.meta.json')).sort(),
      ['thumbnail.jpg', 'video.mp4'],
    );
  });

  // An iPhone stores its photos as HEIC, which npm's ffmpeg does not decode.
  it('makes a vlog of an iPhone photo (HEIC)', async () => {
    const heic: FormFile = {
      field: 'media',
      filename: 'IMG_0002.HEIC',
      contentType: 'image/heic',
      bytes: await readFile(new URL('../fixtures/red-64x48.heic', import.meta.url)),
    };
    const vlog = await accepted({ title: 'Phone', durationSeconds: '4', aspectRatio: '16:9' }, [
      heic,
    ]);
    const done = await waitFor(vlog.id, isTerminal, 'vlog finished');
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const video = await probeVideo(tools.ffprobe, await download(done.videoUrl!));
    assert.deepEqual(video.video, { codec: 'h264', width: 1280, height: 720 });
  });

  it('renders portrait vlogs at 720×1280', async () => {
    const vlog = await accepted({ title: 'Portrait', durationSeconds: '4', aspectRatio: '9:16' }, [
      media['friends']!,
      media['sunrise']!,
    ]);
    const done = await waitFor(vlog.id, isTerminal, 'vlog finished');
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const video = await probeVideo(tools.ffprobe, await download(done.videoUrl!));
    assert.deepEqual(video.video, { codec: 'h264', width: 720, height: 1280 });
    assert.ok(Math.abs(video.durationSeconds - 4) < 0.05, `${video.durationSeconds} s`);
  });

  it('cancels during rendering: ffmpeg stops within seconds and no partial file is left', async (t) => {
    const clip = await renderTestVideo(tools.ffmpeg, 8, { size: '1280x720', audio: true });
    // Paced to real time, the render cannot end before the cancel sent at its first progress.
    paced.pace(true);
    t.after(() => paced.pace(false));
    const vlog = await accepted({ title: 'Too long', durationSeconds: '8' }, [
      media['sunrise']!,
      { field: 'media', filename: 'long.mp4', contentType: 'video/mp4', bytes: clip },
    ]);
    const handle = h.temporal.client.workflow.getHandle(vlog.id);
    // Real progress from ffmpeg reaches Temporal through the render's heartbeats.
    const progress = await eventually(
      async () => {
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        const render = pending.find((a) => a.activityType?.name === 'startVideoGeneration');
        const details = render?.heartbeatDetails?.payloads?.[0];
        return details
          ? defaultPayloadConverter.fromPayload<{ render?: RenderProgress }>(details).render
          : undefined;
      },
      (render) => render !== undefined && render.renderedSeconds > 0,
      { what: 'render progress heartbeated', timeoutMs: 60_000, intervalMs: 50 },
    );
    assert.equal(progress?.totalSeconds, 8);
    const workDir = path.join(config.renderWorkDir, `renders-${vlog.id}-attempt-1`);
    const rendering = await processesWorkingIn(workDir);
    assert.ok(
      rendering.some((process) => process.command.endsWith('ffmpeg')),
      `no ffmpeg running in ${workDir}: ${JSON.stringify(rendering)}`,
    );

    const cancelledAt = Date.now();
    const cancel = await newcomer.cancel('vlog', vlog.id, { reason: 'too long' });
    assert.equal(cancel.statusCode, 202);
    await eventually(
      () => processesWorkingIn(workDir),
      (left) => left.length === 0,
      { what: 'ffmpeg stopped', timeoutMs: 10_000, intervalMs: 50 },
    );
    const stoppedAfterMs = Date.now() - cancelledAt;
    assert.ok(stoppedAfterMs < 3_000, `ffmpeg ran on for ${stoppedAfterMs} ms`);
    const done = await waitFor(vlog.id, isTerminal, 'vlog cancelled');
    assert.equal(done.status, 'cancelled');
    // The workflow closes once its cleanup has run.
    await assert.rejects(
      handle.result(),
      (error) =>
        error instanceof WorkflowFailedError &&
        (error.cause as { type?: string } | undefined)?.type === 'CANCELLED',
    );
    // The render itself was cancelled: it never completed (and left the cancel to the transfer).
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = (name: string) =>
      String(
        events.find(
          (event) => event.activityTaskScheduledEventAttributes?.activityType?.name === name,
        )?.eventId,
      );
    const render = scheduled('startVideoGeneration');
    const about = (scheduledEventId: unknown) => String(scheduledEventId) === render;
    assert.ok(
      events.some((event) =>
        about(event.activityTaskCancelRequestedEventAttributes?.scheduledEventId),
      ),
      'no cancel was requested of the render',
    );
    assert.ok(
      !events.some((event) => about(event.activityTaskCompletedEventAttributes?.scheduledEventId)),
      'the render completed before the cancel landed',
    );
    // The cleanup ran once the render had ended, so the render cannot store its video after it.
    const renderEnded = events.find((event) =>
      about(event.activityTaskCanceledEventAttributes?.scheduledEventId),
    );
    assert.ok(renderEnded, 'the render did not end cancelled');
    assert.ok(
      Number(scheduled('cleanupVlog')) > Number(renderEnded.eventId),
      'the cleanup ran while the render could still store its video',
    );
    assert.deepEqual(await readdir(workDir).catch(() => []), []);
    // Nothing is left under the vlog's storage prefixes, open multipart uploads included.
    const storage = new LocalMediaStorage(config.storageLocalDir, {
      publicUrl: config.apiPublicUrl,
      secret: testJwtSecret,
    });
    for (const prefix of [`${localRenderPrefix}${vlog.id}/`, vlogOutputPrefix(vlog.id)]) {
      assert.deepEqual(await storedKeys(prefix), [], prefix);
      assert.deepEqual(await storage.listMultipartUploads(prefix), [], prefix);
    }
  });

  for (const bad of [
    {
      name: 'a corrupt video',
      file: { filename: 'broken.mp4', contentType: 'video/mp4', bytes: mp4Bytes(32 * 1024) },
      message: /^broken\.mp4 cannot be read as a video: /,
    },
    {
      name: 'a corrupt photo',
      file: { filename: 'broken.png', contentType: 'image/png', bytes: pngBytes() },
      message: /^broken\.png cannot be read as an image: /,
    },
  ]) {
    it(`fails the analysis of ${bad.name} with MEDIA_UNREADABLE naming the file, without retrying`, async () => {
      const vlog = await accepted({ title: 'Broken' }, [
        media['sunrise']!,
        { field: 'media', ...bad.file },
      ]);
      const done = await waitFor(vlog.id, isTerminal, 'vlog failed');
      assert.equal(done.status, 'failed');
      assert.equal(done.error?.code, 'MEDIA_UNREADABLE');
      assert.match(done.error?.message ?? '', bad.message);
      const history = await h.temporal.client.workflow.getHandle(vlog.id).fetchHistory();
      const started = (history.events ?? []).filter(
        (event) =>
          event.activityTaskStartedEventAttributes &&
          event.activityTaskStartedEventAttributes.attempt,
      );
      assert.ok(
        started.every((event) => event.activityTaskStartedEventAttributes!.attempt === 1),
        'an activity was retried',
      );
    });
  }
});
