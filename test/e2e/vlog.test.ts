import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { msToNumber } from '@temporalio/common/lib/time.js';
import sharp from 'sharp';
import { vlogKind } from '../../src/kinds/vlog/declaration.js';
import { findMediaTools } from '../../src/media/tools.js';
import {
  jpegBytes,
  movBytes,
  mp4Bytes,
  multipartBody,
  pngBytes,
  renderTestVideo,
} from '../fixtures/media.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type FormBody, type Harness, type UserClient } from '../support/harness.js';
import { generationBucket, CloudFakes } from '../support/cloud-fakes.js';

interface VlogView {
  id: string;
  status: string;
  progress: number;
  phase: string | null;
  attempt: number;
  error: { code: string; message: string } | null;
  videoUrl: string | null;
  shareUrl: string | null;
  thumbnailUrl: string | null;
  durationSeconds: number | null;
  media: { name: string; contentType: string; size: number }[];
  live?: { status: string; progress: number } | null;
}

interface ErrorBody {
  error: { code: string; message: string };
}

function vlogForm(fields: Record<string, string> = { title: 'Beach day' }, clipBytes = 64 * 1024) {
  return multipartBody(fields, [
    { field: 'media', filename: 'sunrise.png', contentType: 'image/png', bytes: pngBytes() },
    { field: 'media', filename: 'friends.jpg', contentType: 'image/jpeg', bytes: jpegBytes() },
    { field: 'media', filename: 'waves.mp4', contentType: 'video/mp4', bytes: mp4Bytes(clipBytes) },
  ]);
}

describe('vlogs end to end', () => {
  let fakes: CloudFakes;
  let h: Harness;
  let alice: UserClient;

  before(async () => {
    fakes = await CloudFakes.start();
    h = await startHarness({
      env: fakes.env,
      worker: (db) => fakes.activityDependencies(db),
    });
    alice = h.user('alice');
  });
  afterEach(() => {
    fakes.google.resetScenario();
    fakes.partDelayMs = 0;
  });
  after(async () => {
    await h.stop();
    await fakes.stop();
  });

  async function createVlog(form: FormBody = vlogForm(), headers: Record<string, string> = {}) {
    const response = await alice.postForm('/api/vlogs', form, headers);
    return {
      status: response.statusCode,
      body: response.json<VlogView & ErrorBody>(),
      headers: response.headers,
    };
  }

  const getVlog = (id: string, query = '') => alice.view<VlogView>('vlog', id, query);

  async function post(url: string, payload?: object) {
    const response = await alice.post(url, payload);
    return {
      status: response.statusCode,
      body: response.json<Record<string, unknown> & ErrorBody>(),
    };
  }

  function waitFor(
    id: string,
    done: (view: VlogView) => boolean,
    what: string,
    seen: VlogView[] = [],
  ) {
    return alice.awaitJob('vlog', id, done, { what, seen });
  }

  const isTerminal = (view: VlogView) => ['completed', 'failed', 'cancelled'].includes(view.status);

  async function accepted(
    form = vlogForm(),
    headers: Record<string, string> = {},
  ): Promise<VlogView> {
    const response = await createVlog(form, headers);
    assert.equal(response.status, 202, JSON.stringify(response.body));
    return response.body;
  }

  it('measures the delivered video and cuts its thumbnail with ffmpeg', async () => {
    const tools = await findMediaTools();
    assert.ok(tools, 'ffmpeg ships with the npm dependencies');
    fakes.google.scenario.videoContent = await renderTestVideo(tools.ffmpeg, 2);
    const vlog = await accepted();
    const done = await waitFor(vlog.id, isTerminal, 'vlog finished');
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const delivered = Buffer.from(await (await fetch(done.videoUrl!)).arrayBuffer());
    assert.ok(
      delivered.equals(fakes.google.scenario.videoContent),
      `delivered ${delivered.length} bytes: ${delivered.subarray(0, 16).toString('hex')}`,
    );
    // Measured, not the 8 s that was asked for.
    assert.equal(done.durationSeconds, 2);
    assert.ok(done.thumbnailUrl);
    const thumbnail = Buffer.from(await (await fetch(done.thumbnailUrl)).arrayBuffer());
    assert.equal(thumbnail.subarray(0, 3).toString('hex'), 'ffd8ff', 'the thumbnail is a JPEG');

    // Read as any job, it shows what was uploaded and made, never where the service keeps it.
    const row = await h.db
      .selectFrom('jobs')
      .select(['input', 'result'])
      .where('id', '=', vlog.id)
      .executeTakeFirstOrThrow();
    const stored = row as {
      input: { media: { key: string }[] };
      result: { videoKey: string; thumbnailKey: string };
    };
    const keys = [
      ...stored.input.media.map((media) => media.key),
      stored.result.videoKey,
      stored.result.thumbnailKey,
    ];
    const asJob = await alice.get(`/api/jobs/${vlog.id}`);
    assert.equal(asJob.statusCode, 200, asJob.body);
    const listed = await alice.get('/api/jobs?kind=vlog&limit=100');
    assert.equal(listed.statusCode, 200, listed.body);
    for (const body of [asJob.body, listed.body])
      for (const key of keys) assert.ok(!body.includes(key), `${key} shown in ${body}`);
    const job = asJob.json<{
      input: { media: unknown[] };
      result: Record<string, unknown>;
    }>();
    assert.deepEqual(job.input.media, [
      { name: 'sunrise.png', contentType: 'image/png', kind: 'image', size: pngBytes().length },
      { name: 'friends.jpg', contentType: 'image/jpeg', kind: 'image', size: jpegBytes().length },
      {
        name: 'waves.mp4',
        contentType: 'video/mp4',
        kind: 'video',
        size: mp4Bytes(64 * 1024).length,
      },
    ]);
    assert.deepEqual(job.result, {
      durationSeconds: 2,
      sizeBytes: fakes.google.scenario.videoContent.length,
      mimeType: 'video/mp4',
    });
  });

  it('turns uploads into a delivered video through analysis, generation and transfer', async () => {
    fakes.google.scenario.pollsBeforeDone = 3;
    fakes.google.scenario.videoBytes = 20 * 1024 * 1024;
    const calls = { ...fakes.google.calls };
    const vlog = await accepted(vlogForm({ title: 'Beach day' }, 20 * 1024 * 1024));
    assert.equal(vlog.status, 'pending');
    assert.deepEqual(
      vlog.media.map((item) => item.contentType),
      ['image/png', 'image/jpeg', 'video/mp4'],
    );

    const seen: VlogView[] = [];
    const done = await waitFor(vlog.id, isTerminal, 'vlog finished', seen);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.progress, 100);
    // Random bytes cannot be measured: the duration Veo was asked for stands, and no thumbnail.
    assert.equal(done.durationSeconds, 8);
    assert.equal(done.thumbnailUrl, null);
    assert.ok(seen.some((view) => view.status === 'generating'));
    const progress = seen.map((view) => view.progress);
    assert.deepEqual(
      progress,
      [...progress].sort((a, b) => a - b),
      'progress went backwards',
    );

    // The video plays from R2 (moto) and is the one Veo wrote to Cloud Storage.
    assert.ok(done.videoUrl && done.shareUrl);
    const video = await fetch(done.videoUrl);
    assert.equal(video.status, 200);
    assert.equal((await video.arrayBuffer()).byteLength, 20 * 1024 * 1024);
    // Stored once: moved out of Cloud Storage, not copied.
    assert.deepEqual(await fakes.mediaKeys(`vlogs/${vlog.id}/`), [`vlogs/${vlog.id}/video.mp4`]);
    assert.deepEqual(await fakes.generatedKeys(`generated/${vlog.id}/`), []);

    // One paid generation; the clip went through the Files API, the photos inline.
    assert.equal(fakes.google.calls.predictLongRunning - calls.predictLongRunning, 1);
    assert.equal(fakes.google.calls.fileUploads - calls.fileUploads, 1);
    assert.equal(fakes.google.calls.generateContent - calls.generateContent, 1);
    const analysisRequest = fakes.google.analysisRequests.at(-1) as {
      contents: { parts: object[] }[];
    };
    assert.equal(
      analysisRequest.contents[0]?.parts.filter((part) => 'inlineData' in part).length,
      2,
    );

    // Three 8 MiB parts, each sent once.
    assert.equal(fakes.s3.uploadedParts(`vlogs/${vlog.id}/video.mp4`), 3);
    // Its workflow has closed: asking it would have a worker replay its history.
    const live = await getVlog(vlog.id, '?live=true');
    assert.equal(live.live, null);
  });

  // Gemini reads no GIF or AVIF photo (it answers 400): a vlog with one was accepted with 202
  // and failed at its analysis. Its list of video types names QuickTime `video/mov`.
  it('sends a GIF or AVIF photo to Gemini as a PNG and a QuickTime clip as video/mov, types it reads', async () => {
    const photo = () =>
      sharp({ create: { width: 64, height: 48, channels: 3, background: '#2060c0' } });
    const vlog = await accepted(
      multipartBody({ title: 'Old formats' }, [
        {
          field: 'media',
          filename: 'party.gif',
          contentType: 'image/gif',
          bytes: await photo().gif().toBuffer(),
        },
        {
          field: 'media',
          filename: 'park.avif',
          contentType: 'image/avif',
          bytes: await photo().avif().toBuffer(),
        },
        { field: 'media', filename: 'waves.mp4', contentType: 'video/mp4', bytes: mp4Bytes() },
        {
          field: 'media',
          filename: 'IMG_0042.MOV',
          contentType: 'video/quicktime',
          bytes: movBytes(),
        },
      ]),
    );
    assert.deepEqual(
      vlog.media.map((item) => item.contentType),
      ['image/gif', 'image/avif', 'video/mp4', 'video/quicktime'],
    );
    const done = await waitFor(vlog.id, isTerminal, 'vlog finished');
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const sent = fakes.google.analysisRequests
      .at(-1)!
      .contents.flatMap((content) => content.parts)
      .map((part) => part.inlineData?.mimeType ?? part.fileData?.mimeType)
      .filter(Boolean);
    assert.deepEqual(sent, ['image/png', 'image/png', 'video/mp4', 'video/mov']);
  });

  // Temporal takes heartbeats that stop for the heartbeat timeout (10 s) for a lost worker and
  // runs the step again: a step must heartbeat while it waits on a slow provider, not only
  // around its long calls.
  it('waits for a Veo status check slower than the heartbeat timeout instead of asking again', async () => {
    const heartbeatTimeoutMs = msToNumber(vlogKind.activityPolicies.generation.heartbeatTimeout);
    fakes.google.scenario.pollLatencyMs = heartbeatTimeoutMs + 2_000;
    const checks = fakes.google.calls.fetchPredictOperation;
    const vlog = await accepted();
    const done = await waitFor(vlog.id, isTerminal, 'vlog finished');
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(fakes.google.calls.fetchPredictOperation - checks, 1, 'status checks');
  });

  it('answers a repeated Idempotency-Key with the same vlog and a different request with 422', async () => {
    const key = `key-${Date.now()}`;
    const form = vlogForm({ title: 'Same' });
    const first = await createVlog(form, { 'idempotency-key': key });
    assert.equal(first.status, 202);
    const before = await fakes.mediaKeys('uploads/');
    const again = await createVlog(form, { 'idempotency-key': key });
    assert.equal(again.status, 202);
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    const different = await createVlog(vlogForm({ title: 'Different' }), {
      'idempotency-key': key,
    });
    assert.equal(different.status, 422);
    assert.equal(different.body.error.code, 'IDEMPOTENCY_KEY_REUSED');
    // Neither the replay nor the rejected request left media behind.
    assert.deepEqual(await fakes.mediaKeys('uploads/'), before);
    await waitFor(first.body.id, isTerminal, 'idempotent vlog finished');
  });

  it('cancels during generation: the vlog ends cancelled with the reason and nothing half-made is left', async () => {
    fakes.google.scenario.pollsBeforeDone = 1_000_000;
    const vlog = await accepted();
    await waitFor(
      vlog.id,
      (view) => view.status === 'generating' && view.progress > 25,
      'vlog generating',
    );
    const cancel = await post(`/api/vlogs/${vlog.id}/cancel`, { reason: 'changed my mind' });
    assert.equal(cancel.status, 202);
    const done = await waitFor(vlog.id, isTerminal, 'vlog cancelled');
    assert.equal(done.status, 'cancelled');
    assert.equal(done.error?.code, 'CANCELLED');
    assert.match(done.error?.message ?? '', /changed my mind/);
    assert.deepEqual(await fakes.generatedKeys(`generated/${vlog.id}/`), []);
    assert.equal(await fakes.openMultipartUploads(`vlogs/${vlog.id}/`), 0);

    const again = await post(`/api/vlogs/${vlog.id}/cancel`, {});
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'JOB_NOT_CANCELLABLE');
  });

  it('cancels during the transfer: the upload is aborted and no video is left in R2', async () => {
    fakes.google.scenario.videoBytes = 12 * 8 * 1024 * 1024;
    // Two seconds a part: the transfer is still running when the cancel arrives.
    fakes.partDelayMs = 2_000;
    const vlog = await accepted();
    const key = `vlogs/${vlog.id}/video.mp4`;
    await eventually(
      () => Promise.resolve(fakes.s3.uploadedParts(key)),
      (count) => count >= 1,
      { what: 'the first part in R2', intervalMs: 10, timeoutMs: 120_000 },
    );
    const cancel = await post(`/api/vlogs/${vlog.id}/cancel`, { reason: 'too slow' });
    assert.equal(cancel.status, 202);
    const done = await waitFor(vlog.id, isTerminal, 'vlog cancelled');
    assert.equal(
      done.status,
      'cancelled',
      `the transfer finished first: ${fakes.s3.uploadedParts(key)} parts`,
    );
    assert.equal(await fakes.openMultipartUploads(`vlogs/${vlog.id}/`), 0);
    assert.deepEqual(await fakes.mediaKeys(`vlogs/${vlog.id}/`), []);
    assert.deepEqual(await fakes.generatedKeys(`generated/${vlog.id}/`), []);
  });

  it('cancels during analysis, abandoning the model call', async () => {
    fakes.google.scenario.analysisAnswers = [{ kind: 'hang' }];
    const abandoned = fakes.google.calls.abandonedAnalyses;
    const asked = fakes.google.calls.generateContent;
    const vlog = await accepted();
    // Cancel once the model call is really under way (hanging), not while it is still queued.
    await eventually(
      () => Promise.resolve(fakes.google.calls.generateContent - asked),
      (count) => count === 1,
      { what: 'the analysis request sent' },
    );
    const cancel = await post(`/api/vlogs/${vlog.id}/cancel`);
    assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
    const done = await waitFor(vlog.id, isTerminal, 'vlog cancelled');
    assert.equal(done.status, 'cancelled');
    // The activity heard of the cancellation through its heartbeat and aborted the request.
    await eventually(
      () => Promise.resolve(fakes.google.calls.abandonedAnalyses - abandoned),
      (count) => count === 1,
      // A cancel reaches an activity with its next heartbeat; heartbeats are throttled to 12 s.
      { what: 'the hung analysis request closed', timeoutMs: 90_000 },
    );
  });

  it('fails on a generation error, then a retry keeps the analysis and submits one new generation', async () => {
    fakes.google.scenario.generationOutcomes = [
      { kind: 'error', message: 'the renderer fell over' },
    ];
    const calls = { ...fakes.google.calls };
    const vlog = await accepted();
    const failed = await waitFor(vlog.id, isTerminal, 'vlog failed');
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'GENERATION_FAILED');
    assert.match(failed.error?.message ?? '', /renderer fell over/);

    const retry = await post(`/api/vlogs/${vlog.id}/retry`);
    assert.equal(retry.status, 202, JSON.stringify(retry.body));
    assert.equal(retry.body['attempt'], 2);
    const done = await waitFor(
      vlog.id,
      (view) => view.status === 'completed',
      'retried vlog completed',
    );
    assert.equal(done.attempt, 2);
    assert.equal(done.error, null);
    assert.equal(fakes.google.calls.predictLongRunning - calls.predictLongRunning, 2);
    assert.equal(
      fakes.google.calls.generateContent - calls.generateContent,
      1,
      'the analysis was redone',
    );

    const notFailed = await post(`/api/vlogs/${vlog.id}/retry`);
    assert.equal(notFailed.status, 409);
    assert.equal(notFailed.body.error.code, 'JOB_NOT_RETRYABLE');
    assert.match(
      notFailed.body.error.message,
      /Only a failed or timed-out vlog can be retried; this one is completed/,
    );
  });

  it('never re-submits a generation that succeeded when a retry follows a failed transfer', async () => {
    fakes.google.scenario.writeVideo = false;
    const calls = { ...fakes.google.calls };
    const vlog = await accepted();
    const failed = await waitFor(vlog.id, isTerminal, 'vlog failed');
    assert.equal(failed.error?.code, 'TRANSFER_FAILED');
    // The video turns up (as if storage had been slow); the retry only transfers it.
    const [operationName] =
      [...fakes.google.operations.entries()].find(([, op]) => op.storageUri.includes(vlog.id)) ??
      [];
    const videoUri = fakes.google.operations.get(operationName!)?.videoUri;
    assert.ok(videoUri);
    await fakes.gcsClient
      .bucket(generationBucket)
      .file(videoUri.replace(`gs://${generationBucket}/`, ''))
      .save(Buffer.alloc(1024, 7), { resumable: false });
    assert.equal((await fakes.generatedKeys(`generated/${vlog.id}/`)).length, 1);
    assert.equal((await post(`/api/vlogs/${vlog.id}/retry`)).status, 202);
    const done = await waitFor(
      vlog.id,
      (view) => view.status === 'completed',
      'retried vlog completed',
    );
    assert.equal(done.attempt, 2);
    assert.equal(fakes.google.calls.predictLongRunning - calls.predictLongRunning, 1);
    assert.deepEqual(await fakes.generatedKeys(`generated/${vlog.id}/`), []);
  });

  it('allows at most three retries', async () => {
    fakes.google.scenario.generationOutcomes = Array.from({ length: 4 }, () => ({
      kind: 'error' as const,
      message: 'no',
    }));
    const vlog = await accepted();
    for (let attempt = 2; attempt <= 4; attempt += 1) {
      await waitFor(
        vlog.id,
        (view) => view.status === 'failed' && view.attempt === attempt - 1,
        `attempt ${attempt - 1} failed`,
      );
      const retry = await post(`/api/vlogs/${vlog.id}/retry`);
      assert.equal(retry.status, 202);
      assert.equal(retry.body['attempt'], attempt);
    }
    await waitFor(
      vlog.id,
      (view) => view.status === 'failed' && view.attempt === 4,
      'attempt 4 failed',
    );
    const refused = await post(`/api/vlogs/${vlog.id}/retry`);
    assert.equal(refused.status, 409);
    assert.match(refused.body.error.message, /already retried 3 times/);
  });

  it('retries a rate-limited submission after the provider’s delay and pays once', async () => {
    fakes.google.scenario.startFailures = [{ status: 429, retryDelay: '3s' }];
    const calls = { ...fakes.google.calls };
    const vlog = await accepted();
    const done = await waitFor(vlog.id, isTerminal, 'vlog finished');
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    // The rejected submission created nothing; the accepted one is the only operation.
    assert.equal(fakes.google.calls.predictLongRunning - calls.predictLongRunning, 2);
    const operations = [...fakes.google.operations.values()].filter((op) =>
      op.storageUri.includes(vlog.id),
    );
    assert.equal(operations.length, 1);
    assert.equal(done.attempt, 1);
    // The retry waited for the provider's RetryInfo (3 s), not the 200 ms configured backoff
    // (which the server's retry scheduling stretches to about 1 s).
    const [rejected, accepted_] = fakes.google.submissionTimes.slice(-2);
    assert.ok(accepted_! - rejected! >= 2_900, `retried after ${accepted_! - rejected!} ms`);
  });

  for (const scenario of [
    {
      name: 'a safety block in the analysis',
      setup: (f: CloudFakes) => (f.google.scenario.analysisAnswers = [{ kind: 'blocked' }]),
      code: 'SAFETY_BLOCKED',
      analysisCalls: 1,
    },
    {
      name: 'analysis output that never matches the schema',
      setup: (f: CloudFakes) =>
        (f.google.scenario.analysisAnswers = [
          { kind: 'text', text: 'not json' },
          { kind: 'text', text: '{"summary": "x"}' },
          { kind: 'text', text: '[]' },
        ]),
      code: 'INVALID_PROVIDER_OUTPUT',
      analysisCalls: 3,
    },
    {
      name: 'a video removed by the safety filters',
      setup: (f: CloudFakes) =>
        (f.google.scenario.generationOutcomes = [
          { kind: 'filtered', reasons: ['unsafe content'] },
        ]),
      code: 'CONTENT_FILTERED',
      analysisCalls: 1,
    },
    {
      name: 'a permission error from Vertex',
      setup: (f: CloudFakes) => (f.google.scenario.startFailures = [{ status: 403 }]),
      code: 'PROVIDER_PERMISSION_DENIED',
      analysisCalls: 1,
    },
  ]) {
    it(`fails without retrying on ${scenario.name}`, async () => {
      scenario.setup(fakes);
      const calls = { ...fakes.google.calls };
      const vlog = await accepted();
      const done = await waitFor(vlog.id, isTerminal, 'vlog failed');
      assert.equal(done.status, 'failed');
      assert.equal(done.error?.code, scenario.code);
      assert.equal(
        fakes.google.calls.generateContent - calls.generateContent,
        scenario.analysisCalls,
      );
    });
  }

  it('retries provider errors with backoff and gives up after the configured attempts', async () => {
    fakes.google.scenario.analysisFailures = [{ status: 500 }, { status: 503 }, { status: 500 }];
    const calls = { ...fakes.google.calls };
    const vlog = await accepted();
    const done = await waitFor(vlog.id, isTerminal, 'vlog failed');
    assert.equal(done.status, 'failed');
    assert.equal(done.error?.code, 'PROVIDER_UNAVAILABLE');
    assert.equal(
      fakes.google.calls.generateContent - calls.generateContent,
      3,
      'PROVIDER_RETRY_ATTEMPTS is 3',
    );
  });

  it('recovers from a 500 storm shorter than the retry budget', async () => {
    fakes.google.scenario.analysisFailures = [{ status: 500 }, { status: 429, retryDelay: '0.2s' }];
    const vlog = await accepted();
    const done = await waitFor(vlog.id, isTerminal, 'vlog finished');
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
  });

  it('recovers when the model answers off-schema once', async () => {
    fakes.google.scenario.analysisAnswers = [{ kind: 'text', text: '{"mood": 3}' }];
    const vlog = await accepted();
    const done = await waitFor(vlog.id, isTerminal, 'vlog finished');
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
  });
});
