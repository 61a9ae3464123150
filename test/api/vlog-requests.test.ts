import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { insertJob } from '../../src/db/jobs.js';
import { terminalStatuses } from '../../src/jobs/model.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { mp4Bytes, multipartBody, pngBytes, type FormFile } from '../fixtures/media.js';
import {
  startHarness,
  type FormBody,
  type Harness,
  type TestApi,
  type UserClient,
} from '../support/harness.js';
import { eventually } from '../support/eventually.js';
import { assertOnlyControlJobOf, jobRecord, vlogInput } from '../support/jobs.js';
import { assertStoredOnlyUploadOf } from '../support/stored-files.js';
import { expectOwnerWorkflows, startTestWorker, uniqueTaskQueue } from '../support/temporal.js';

interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

const png = (): FormFile => ({
  field: 'media',
  filename: 'a.png',
  contentType: 'image/png',
  bytes: pngBytes(),
});

// No worker polls this API's task queue: every request here must be refused before a job exists.
describe('vlog requests that are refused', () => {
  let h: Harness;
  let partlyConfigured: TestApi;
  let withoutFfmpeg: TestApi;
  let stopWorker: () => Promise<void> = async () => undefined;
  const storageRoot = path.join(os.tmpdir(), `vlogflow-refused-${randomUUID()}`);
  const user = `refused-${randomUUID().slice(0, 8)}`;
  const providers = {
    VERTEX_PROJECT: 'p',
    VEO_OUTPUT_GCS_URI: 'gs://bucket/out/',
    GEMINI_API_KEY: 'k',
  };

  before(async () => {
    const mediaStorage = new LocalMediaStorage(storageRoot, {
      publicUrl: 'http://api.test',
      secret: 's',
    });
    const env = { ...providers, VLOG_MAX_FILES: '2', VLOG_MAX_FILE_BYTES: String(100 * 1024) };
    h = await startHarness({ env, mediaStorage });
    // A Gemini key alone selects the Google provider, which also needs Vertex for Veo.
    partlyConfigured = await h.startApi({ env: { GEMINI_API_KEY: 'k' }, mediaStorage });
    // No cloud settings select the local provider, which needs ffmpeg on the workers: this API's
    // task queue has one that has none.
    const withoutFfmpegQueue = uniqueTaskQueue('refused-no-ffmpeg');
    withoutFfmpeg = await h.startApi({ mediaStorage, taskQueue: withoutFfmpegQueue });
    const worker = await startTestWorker(withoutFfmpegQueue, { db: h.db });
    stopWorker = () => worker.stop();
    await eventually(
      () => withoutFfmpeg.app.inject({ method: 'GET', url: '/readyz' }),
      (response) => /has ffmpeg/.test(response.body),
      { what: 'the worker without ffmpeg seen polling' },
    );
  });
  after(async () => {
    await stopWorker();
    await h.stop();
  });

  async function send(
    body: FormBody,
    extraHeaders: Record<string, string> = {},
    target: UserClient = h.user(user),
  ) {
    const response = await target.postForm('/api/vlogs', body, extraHeaders);
    return { status: response.statusCode, error: response.json<ErrorBody>().error };
  }

  const cases: {
    name: string;
    body: () => FormBody;
    headers?: Record<string, string>;
    status: number;
    code: string;
    message: RegExp;
    /** `details.issues`, where the answer must have them. */
    issues?: { field: string; message: string }[];
  }[] = [
    {
      name: 'no files',
      body: () => multipartBody({ title: 'x' }, []),
      status: 400,
      code: 'NO_MEDIA',
      message: /^media: at least one/,
    },
    {
      name: 'more files than allowed',
      body: () => multipartBody({ title: 'x' }, [png(), png(), png()]),
      status: 400,
      code: 'TOO_MANY_FILES',
      message: /^media: at most 2 files/,
    },
    {
      name: 'a file over the size limit',
      body: () =>
        multipartBody({ title: 'x' }, [
          png(),
          {
            field: 'media',
            filename: 'big.mp4',
            contentType: 'video/mp4',
            bytes: mp4Bytes(300 * 1024),
          },
        ]),
      status: 413,
      code: 'FILE_TOO_LARGE',
      message: /^media: big\.mp4 is larger than the limit of 102400 bytes \(100 KiB\)/,
    },
    {
      name: 'text dressed up as a video',
      body: () =>
        multipartBody({ title: 'x' }, [
          {
            field: 'media',
            filename: 'clip.mp4',
            contentType: 'video/mp4',
            bytes: Buffer.from('just some text, honestly'),
          },
        ]),
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: /^media: clip\.mp4 is not an image or video/,
    },
    {
      name: 'an image after a valid file whose content is a PDF',
      body: () =>
        multipartBody({ title: 'x' }, [
          png(),
          {
            field: 'media',
            filename: 'photo.jpg',
            contentType: 'image/jpeg',
            bytes: Buffer.from('%PDF-1.7\n%âãÏÓ\n1 0 obj'),
          },
        ]),
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: /photo\.jpg is not an image or video \(its content is application\/pdf\)/,
    },
    {
      name: 'an image named like a video',
      body: () =>
        multipartBody({ title: 'x' }, [
          { field: 'media', filename: 'waves.mp4', contentType: 'video/mp4', bytes: pngBytes() },
        ]),
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: /^media: waves\.mp4 is named like a video but its content is image\/png/,
    },
    {
      name: 'an empty file',
      body: () =>
        multipartBody({ title: 'x' }, [
          {
            field: 'media',
            filename: 'empty.png',
            contentType: 'image/png',
            bytes: Buffer.alloc(0),
          },
        ]),
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: /empty\.png is not an image or video/,
    },
    {
      name: 'a missing title',
      body: () => multipartBody({}, [png()]),
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^body\.title: /,
    },
    {
      name: 'an unsupported duration',
      body: () => multipartBody({ title: 'x', durationSeconds: '5' }, [png()]),
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^body\.durationSeconds: must be 4, 6 or 8/,
    },
    {
      name: 'a concurrency key with a space',
      body: () => multipartBody({ title: 'x', concurrencyKey: 'my album' }, [png()]),
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^body\.concurrencyKey: must be 1 to 128 characters/,
    },
    {
      name: 'an unknown field',
      body: () => multipartBody({ title: 'x', colour: 'red' }, [png()]),
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^body\.colour: unknown field: a vlog upload takes title, prompt/,
    },
    {
      name: 'a field given twice',
      body: () => {
        const { payload, headers } = multipartBody({ title: 'x' }, [png()]);
        const boundary = headers['content-type']!.split('boundary=')[1]!;
        const first = `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\ny\r\n`;
        return { payload: Buffer.concat([Buffer.from(first), payload]), headers };
      },
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^body\.title: given more than once$/,
      issues: [{ field: 'body.title', message: 'given more than once' }],
    },
    {
      name: 'a file under an unknown field',
      body: () => multipartBody({ title: 'x' }, [{ ...png(), field: 'attachment' }]),
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^body\.attachment: unknown file field/,
    },
    {
      name: 'a malformed multipart body',
      body: () => {
        const { payload, headers } = multipartBody({ title: 'x' }, [png()]);
        return { payload: payload.subarray(0, payload.length - 40), headers };
      },
      status: 400,
      code: 'INVALID_MULTIPART',
      message: /multipart body could not be read/,
    },
    {
      name: 'a form that ends after a whole file without its closing boundary',
      body: () => {
        const { payload, headers } = multipartBody({ title: 'x' }, [
          { field: 'media', filename: 'clip.mp4', contentType: 'video/mp4', bytes: mp4Bytes() },
        ]);
        const boundary = headers['content-type']!.split('boundary=')[1]!;
        return {
          payload: payload.subarray(0, payload.length - `--${boundary}--\r\n`.length),
          headers,
        };
      },
      status: 400,
      code: 'INVALID_MULTIPART',
      message: /multipart body could not be read: .*unexpected end of multipart data/,
    },
    {
      name: 'a JSON body',
      body: () => ({
        payload: JSON.stringify({ title: 'x' }),
        headers: { 'content-type': 'application/json' },
      }),
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: /multipart\/form-data/,
    },
    {
      name: 'a title of zero-width and direction marks only',
      body: () => multipartBody({ title: '\u200b\u202e\u200f' }, [png()]),
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^body\.title: must have something to read/,
    },
    {
      name: 'a title with a right-to-left override',
      body: () => multipartBody({ title: 'Beach \u202eyad' }, [png()]),
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^body\.title: must not contain control characters .*direction overrides/,
    },
    {
      name: 'a prompt with a terminal escape',
      body: () => multipartBody({ title: 'Beach day', prompt: 'sunny \u001b[2J' }, [png()]),
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^body\.prompt: must not contain control characters/,
    },
    {
      name: 'a title with bytes that are not UTF-8',
      body: () => {
        const { payload, headers } = multipartBody({ title: 'caf' }, [png()]);
        const at = payload.indexOf('caf') + 3;
        const latin1 = Buffer.from([0xe9]);
        return {
          payload: Buffer.concat([payload.subarray(0, at), latin1, payload.subarray(at)]),
          headers,
        };
      },
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^body\.title: must be UTF-8 text/,
    },
    {
      name: 'a file name with bytes that are not UTF-8',
      body: () => {
        const { payload, headers } = multipartBody({ title: 'x' }, [png()]);
        const at = payload.indexOf('a.png');
        return {
          payload: Buffer.concat([
            payload.subarray(0, at),
            Buffer.from([0xff]),
            payload.subarray(at),
          ]),
          headers,
        };
      },
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^media file name: must be UTF-8 text/,
    },
    {
      name: 'a field with a NUL character',
      body: () => multipartBody({ title: 'Beach\u0000day' }, [png()]),
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^body\.title: must not contain NUL characters/,
    },
    {
      name: 'a file name with a NUL character',
      body: () => multipartBody({ title: 'x' }, [png(), { ...png(), filename: 'b\u0000.png' }]),
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^media file name: must not contain NUL characters/,
    },
    {
      name: 'an Idempotency-Key that is too long',
      body: () => multipartBody({ title: 'x' }, [png()]),
      headers: { 'idempotency-key': 'k'.repeat(300) },
      status: 400,
      code: 'VALIDATION_FAILED',
      message: /^headers\.idempotency-key: /,
    },
  ];

  for (const testCase of cases) {
    it(`answers ${testCase.status} ${testCase.code} for ${testCase.name}`, async () => {
      const { status, error } = await send(testCase.body(), testCase.headers);
      assert.equal(status, testCase.status, JSON.stringify(error));
      assert.equal(error.code, testCase.code);
      assert.match(error.message, testCase.message);
      if (testCase.issues) assert.deepEqual(error.details, { issues: testCase.issues });
    });
  }

  it('answers 503 naming the missing settings when the Google provider is half configured', async () => {
    const { status, error } = await send(
      multipartBody({ title: 'x' }, [png()]),
      {},
      partlyConfigured.user(user),
    );
    assert.equal(status, 503);
    assert.equal(error.code, 'VIDEO_PROVIDER_NOT_CONFIGURED');
    assert.match(error.message, /google provider .* VERTEX_PROJECT, VEO_OUTPUT_GCS_URI/);
  });

  it('answers 503 naming ffmpeg when the local provider is selected and there is none', async () => {
    const { status, error } = await send(
      multipartBody({ title: 'x' }, [png()]),
      {},
      withoutFfmpeg.user(user),
    );
    assert.equal(status, 503);
    assert.equal(error.code, 'VIDEO_PROVIDER_NOT_CONFIGURED');
    assert.match(error.message, /local provider needs ffmpeg and ffprobe/);
  });

  // One key names one job per user, whatever its kind: this used to start a second workflow,
  // hit the database's unique key and answer 503 DATABASE_UNAVAILABLE.
  it('answers 422 to an Idempotency-Key already used for an AI job, keeping none of the upload', async () => {
    const keyUser = `keyed-${randomUUID().slice(0, 8)}`;
    const keyed = h.user(keyUser);
    const headers = { 'idempotency-key': 'plan-1' };
    const aiJob = await keyed.post(
      '/api/ai/jobs',
      { type: 'SUBGOAL_GENERATION', input: { goal: 'Learn to sail' } },
      headers,
    );
    assert.equal(aiJob.statusCode, 202, aiJob.body);
    const aiJobId = aiJob.json<{ id: string }>().id;
    try {
      const form = multipartBody({ title: 'x' }, [png()]);
      const vlog = await keyed.postForm('/api/vlogs', form, headers);
      assert.equal(vlog.statusCode, 422, vlog.body);
      assert.equal(vlog.json<ErrorBody>().error.code, 'IDEMPOTENCY_KEY_REUSED');
      const rows = await h.db
        .selectFrom('jobs')
        .select('id')
        .where('owner_id', '=', keyUser)
        .execute();
      assert.deepEqual(rows, [{ id: aiJobId }]);
      await expectOwnerWorkflows(h.temporal.client, keyUser, 1);
    } finally {
      await h.temporal.client.workflow.getHandle(aiJobId).terminate('test over');
    }
  });

  it('left no job, no workflow and no stored object behind', async () => {
    const control = await assertOnlyControlJobOf(h, user, 'vlog');
    await assertStoredOnlyUploadOf(storageRoot, h.db, control);
  });

  it("answers an unknown vlog and another user's vlog with the same 404 on every route", async () => {
    const theirs = jobRecord({ ownerId: 'someone-else', kind: 'vlog', type: 'VLOG' });
    await insertJob(h.db, theirs, 'generating');
    for (const id of [theirs.id, 'vlog-does-not-exist']) {
      for (const [method, url] of [
        ['GET', `/api/vlogs/${id}`],
        ['POST', `/api/vlogs/${id}/cancel`],
        ['POST', `/api/vlogs/${id}/retry`],
      ] as const) {
        const response = await h.user(user).request({ method, url });
        assert.equal(response.statusCode, 404, `${method} ${url}`);
        assert.equal(response.json<ErrorBody>().error.code, 'NOT_FOUND');
      }
    }
  });

  it('lists only the caller’s vlogs, filtered by status and creation time', async () => {
    const owner = `lister-${randomUUID().slice(0, 8)}`;
    const lister = h.user(owner);
    const vlog = (createdAt: string) =>
      jobRecord({
        ownerId: owner,
        kind: 'vlog',
        type: 'VLOG',
        createdAt,
        input: vlogInput(),
      });
    await insertJob(h.db, vlog('2026-05-01T00:00:00.000Z'), 'failed');
    await insertJob(h.db, vlog('2026-05-02T00:00:00.000Z'), 'generating');
    await insertJob(h.db, vlog('2026-05-03T00:00:00.000Z'), 'failed');
    await insertJob(
      h.db,
      jobRecord({ ownerId: owner, createdAt: '2026-05-02T12:00:00.000Z' }),
      'failed',
    );
    const list = async (query: string) => {
      const response = await lister.get(`/api/vlogs${query}`);
      assert.equal(response.statusCode, 200, response.body);
      return response.json<{ vlogs: { status: string; createdAt: string }[] }>().vlogs;
    };
    assert.equal((await list('')).length, 3, 'a probe job is not a vlog');
    assert.deepEqual(
      (await list('?status=failed')).map((v) => v.createdAt),
      ['2026-05-03T00:00:00.000Z', '2026-05-01T00:00:00.000Z'],
    );
    assert.deepEqual(
      (await list('?createdFrom=2026-05-02T00:00:00Z&createdTo=2026-05-03T00:00:00Z')).map(
        (v) => v.status,
      ),
      ['generating'],
    );
    const bad = await lister.get('/api/vlogs?status=sleeping');
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json<ErrorBody>().error.message, /^querystring\.status/);
  });

  it('reads, lists and filters a vlog whatever way it ended, timed out in Temporal included', async () => {
    // The job reconciler ends any kind's job `timeout` when its workflow timed out in Temporal.
    const owner = `ended-${randomUUID().slice(0, 8)}`;
    const reader = h.user(owner);
    const ended = new Map<string, string>();
    for (const status of terminalStatuses) {
      const vlog = jobRecord({ ownerId: owner, kind: 'vlog', type: 'VLOG', input: vlogInput() });
      await insertJob(h.db, vlog, status);
      ended.set(status, vlog.id);
    }
    const all = await reader.get('/api/vlogs');
    assert.equal(all.statusCode, 200, all.body);
    assert.equal(all.json<{ vlogs: unknown[] }>().vlogs.length, ended.size);
    for (const [status, id] of ended) {
      const one = await reader.get(`/api/vlogs/${id}`);
      assert.equal(one.statusCode, 200, one.body);
      assert.equal(one.json<{ status: string }>().status, status);
      const filtered = await reader.get(`/api/vlogs?status=${status}`);
      assert.equal(filtered.statusCode, 200, filtered.body);
      assert.deepEqual(
        filtered.json<{ vlogs: { id: string }[] }>().vlogs.map((vlog) => vlog.id),
        [id],
      );
    }
  });
});
