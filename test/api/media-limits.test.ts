import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { findMediaTools, type MediaTools } from '../../src/media/tools.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import {
  mp4Bytes,
  multipartBody,
  renderTestPhoto,
  renderTestVideo,
  type FormFile,
} from '../fixtures/media.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness } from '../support/harness.js';
import { assertOnlyControlJobOf } from '../support/jobs.js';
import { openUpload } from '../support/raw-upload.js';
import { storedFiles } from '../support/stored-files.js';
import { uniqueTaskQueue } from '../support/temporal.js';

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

// Limits small enough for test media: clips of at most 2 s and 320 pixels, photos of at most
// 100 000 pixels. The API runs no ffprobe: a worker with ffmpeg reads the stored uploads. It has
// no working provider, so an accepted vlog fails at once instead of being rendered.
/** An ffprobe that adds a line to `dir`/probing when it starts, and then never ends. */
async function markingHang(dir: string): Promise<string> {
  const file = path.join(dir, 'ffprobe');
  await writeFile(file, `#!/bin/sh\necho >> '${path.join(dir, 'probing')}'\nexec sleep 600\n`);
  await chmod(file, 0o755);
  return file;
}

describe('media limits checked at upload', () => {
  let h: Harness;
  let tools: MediaTools;
  const storageRoot = path.join(os.tmpdir(), `vlogflow-media-limits-${randomUUID()}`);
  const storage = new LocalMediaStorage(storageRoot, { publicUrl: 'http://api.test', secret: 's' });
  const photo = (name: string, bytes: Buffer): FormFile => ({
    field: 'media',
    filename: name,
    contentType: 'image/png',
    bytes,
  });
  const clip = (name: string, bytes: Buffer): FormFile => ({
    field: 'media',
    filename: name,
    contentType: 'video/mp4',
    bytes,
  });
  const env = {
    VLOG_PROVIDER: 'local',
    VLOG_MAX_VIDEO_SECONDS: '2',
    VLOG_MAX_VIDEO_SIDE: '320',
    VLOG_MAX_IMAGE_PIXELS: '100000',
  };
  let smallPhoto: Buffer;
  let shortClip: Buffer;

  before(async () => {
    const found = await findMediaTools();
    assert.ok(found);
    tools = found;
    h = await startHarness({
      env,
      mediaStorage: storage,
      worker: async () => ({ mediaStorage: storage, mediaTools: tools }),
    });
    // Uploads are inspected once the worker's media poller is seen (readiness says so).
    await eventually(
      () => h.api.app.inject({ method: 'GET', url: '/readyz' }),
      (response) => response.statusCode === 200,
      { what: 'a worker with ffmpeg polling the media task queue' },
    );
    // Something stored before: "nothing left" is then a comparison with a listing that is known
    // to see files, not with an empty folder.
    await storage.putStream('baseline/marker.txt', Readable.from(['kept']), 'text/plain');
    [smallPhoto, shortClip] = await Promise.all([
      renderTestPhoto(tools.ffmpeg, 'png', { size: '320x240' }),
      renderTestVideo(tools.ffmpeg, 2, { size: '320x180' }),
    ]);
  });
  after(() => h.stop());

  async function upload(user: string, files: FormFile[]) {
    const form = multipartBody({ title: 'Limits' }, files);
    return h.user(user).postForm('/api/vlogs', form);
  }

  it('accepts media at the limits, storing them and starting a vlog', async () => {
    const user = `at-limits-${randomUUID().slice(0, 8)}`;
    const before = await storedFiles(storageRoot);
    const response = await upload(user, [
      photo('photo.png', smallPhoto),
      clip('clip.mp4', shortClip),
    ]);
    assert.equal(response.statusCode, 202, response.body);
    h.terminateOnStop(response.json<{ id: string }>().id);
    const stored = (await storedFiles(storageRoot)).filter((file) => !before.includes(file));
    assert.ok(
      stored.some((file) => file.endsWith('photo.png')) &&
        stored.some((file) => file.endsWith('clip.mp4')),
      stored.join(', '),
    );
  });

  it('accepts a file ffprobe cannot read: its analysis reports it', async () => {
    const user = `unreadable-${randomUUID().slice(0, 8)}`;
    const response = await upload(user, [clip('fake.mp4', mp4Bytes())]);
    assert.equal(response.statusCode, 202, response.body);
    h.terminateOnStop(response.json<{ id: string }>().id);
  });

  // As when the API ran ffprobe itself and had none: the upload is not held up.
  it('accepts an upload over the limits, unchecked, when no worker with ffmpeg polls', async () => {
    const alone = await h.startApi({
      env,
      mediaStorage: storage,
      taskQueue: uniqueTaskQueue('limits-unchecked'),
    });
    const form = multipartBody({ title: 'Limits' }, [
      clip('long.mp4', await renderTestVideo(tools.ffmpeg, 3)),
    ]);
    const response = await alone
      .user(`unchecked-${randomUUID().slice(0, 8)}`)
      .postForm('/api/vlogs', form);
    assert.equal(response.statusCode, 202, response.body);
    h.terminateOnStop(response.json<{ id: string }>().id);
  });

  it('refuses an upload with 503 MEDIA_INSPECTION_UNAVAILABLE, keeping nothing, when the workers with ffmpeg inspect none in time', async () => {
    // The worker's inspection slots (2), each held by an ffprobe that never ends: the next
    // upload's inspection is not taken within its 10 s, as when a burst of uploads keeps the
    // inspection queue busy.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-busy-inspection-'));
    const busy = await startHarness({
      env,
      mediaStorage: storage,
      worker: async () => ({
        mediaStorage: storage,
        mediaTools: { ...tools, ffprobe: await markingHang(dir) },
        // The hanging reads hold both slots for the whole test, not only until they time out.
        inspectionProbeTimeoutMs: 600_000,
      }),
    });
    let stopped: Promise<void> | undefined;
    try {
      await eventually(
        () => busy.api.app.inject({ method: 'GET', url: '/readyz' }),
        (response) => response.statusCode === 200,
        { what: 'a worker with ffmpeg polling the media task queue' },
      );
      const before = await storedFiles(storageRoot);
      const user = `busy-${randomUUID().slice(0, 8)}`;
      const send = (sender: string) =>
        busy
          .user(sender)
          .postForm('/api/vlogs', multipartBody({ title: 'Busy' }, [clip('c.mp4', shortClip)]));
      // Two other users: one user's uploads are inspected one at a time.
      const holding = [send(`${user}-a`), send(`${user}-b`)];
      await eventually(
        () => readFile(path.join(dir, 'probing'), 'utf8').catch(() => ''),
        (probing) => probing.split('\n').length > 2,
        { what: 'two inspections holding both slots' },
      );
      const refused = await send(user);
      assert.equal(refused.statusCode, 503, refused.body);
      assert.equal(refused.json<ErrorBody>().error.code, 'MEDIA_INSPECTION_UNAVAILABLE');
      assert.equal(refused.headers['retry-after'], '10');
      assert.deepEqual(
        await busy.db.selectFrom('jobs').select('id').where('owner_id', '=', user).execute(),
        [],
      );
      // Stopping the worker ends the hanging inspection, and with it the first upload.
      stopped = busy.stop();
      await stopped;
      for (const held of await Promise.all(holding)) assert.notEqual(held.statusCode, 202);
      assert.deepEqual(await storedFiles(storageRoot), before);
    } finally {
      await (stopped ?? busy.stop());
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const refused of [
    {
      what: 'a clip longer than VLOG_MAX_VIDEO_SECONDS',
      file: async () => clip('long.mp4', await renderTestVideo(tools.ffmpeg, 3)),
      code: 'MEDIA_TOO_LONG',
      message: /^media: long\.mp4 lasts 3 s, over the limit of 2 s for a clip$/,
    },
    {
      what: 'a clip wider than VLOG_MAX_VIDEO_SIDE',
      file: async () =>
        clip('wide.mp4', await renderTestVideo(tools.ffmpeg, 1, { size: '480x270' })),
      code: 'MEDIA_RESOLUTION_TOO_HIGH',
      message:
        /^media: wide\.mp4 is 480×270, over the limit of 320 pixels on a clip's longest side$/,
    },
    {
      what: 'a clip taller than VLOG_MAX_VIDEO_SIDE',
      file: async () =>
        clip('tall.mp4', await renderTestVideo(tools.ffmpeg, 1, { size: '180x400' })),
      code: 'MEDIA_RESOLUTION_TOO_HIGH',
      message: /^media: tall\.mp4 is 180×400, over the limit of 320 pixels/,
    },
    {
      what: 'a photo with more than VLOG_MAX_IMAGE_PIXELS',
      file: async () =>
        photo('big.png', await renderTestPhoto(tools.ffmpeg, 'png', { size: '400x300' })),
      code: 'MEDIA_RESOLUTION_TOO_HIGH',
      message:
        /^media: big\.png is 400×300 \(120000 pixels\), over the limit of 100000 pixels for a photo$/,
    },
  ]) {
    it(`refuses ${refused.what} with 422 ${refused.code}, keeping nothing`, async () => {
      const user = `over-${randomUUID().slice(0, 8)}`;
      const before = await storedFiles(storageRoot);
      assert.ok(
        before.some((file) => file.endsWith('marker.txt')),
        before.join(', '),
      );
      // A file within the limits goes first: it is stored, then deleted with the request.
      const response = await upload(user, [photo('fine.png', smallPhoto), await refused.file()]);
      assert.equal(response.statusCode, 422, response.body);
      const { error } = response.json<ErrorBody>();
      assert.equal(error.code, refused.code);
      assert.match(error.message, refused.message);
      assert.deepEqual(await storedFiles(storageRoot), before);
      await assertOnlyControlJobOf(h, user, 'probe');
    });
  }

  /** The upload inspections started on this harness's queue since `since`, by workflow id. */
  async function inspectionsSince(since: Date): Promise<string[]> {
    const ids: string[] = [];
    const query =
      `WorkflowType = "inspectUploadedMedia" AND TaskQueue = "${h.taskQueue}" ` +
      `AND StartTime >= "${since.toISOString()}"`;
    for await (const workflow of h.temporal.client.workflow.list({ query })) {
      ids.push(workflow.workflowId);
    }
    return ids.sort();
  }

  const badFields: { name: string; fields: Record<string, string>; message: RegExp }[] = [
    {
      name: 'an unsupported duration',
      fields: { title: 'x', durationSeconds: '5' },
      message: /^body\.durationSeconds: must be 4, 6 or 8$/,
    },
    {
      name: 'an unsupported aspect ratio',
      fields: { aspectRatio: '4:3', title: 'x' },
      message: /^body\.aspectRatio: /,
    },
    {
      name: 'a concurrency key with a space',
      fields: { title: 'x', concurrencyKey: 'a b' },
      message: /^body\.concurrencyKey: must be 1 to 128 characters/,
    },
    {
      name: 'a title too long',
      fields: { title: 't'.repeat(201) },
      message: /^body\.title: /,
    },
    { name: 'a blank title', fields: { title: '   ' }, message: /^body\.title: / },
  ];

  // A field is checked as it arrives: one sent before the files refuses the upload before any
  // file is read, stored or inspected (it used to be refused only after all of that).
  it('refuses a bad field sent before the files at once: nothing stored, nothing inspected', async () => {
    const user = `bad-field-${randomUUID().slice(0, 8)}`;
    const since = new Date();
    const before = await storedFiles(storageRoot);
    assert.ok(
      before.some((file) => file.endsWith('marker.txt')),
      before.join(', '),
    );
    for (const bad of badFields) {
      const form = multipartBody(bad.fields, [
        photo('fine.png', smallPhoto),
        clip('clip.mp4', shortClip),
      ]);
      const response = await h.user(user).postForm('/api/vlogs', form);
      assert.equal(response.statusCode, 400, `${bad.name}: ${response.body}`);
      const { error } = response.json<ErrorBody>();
      assert.equal(error.code, 'VALIDATION_FAILED', bad.name);
      assert.match(error.message, bad.message, bad.name);
      assert.deepEqual(await storedFiles(storageRoot), before, bad.name);
    }
    // The control: an upload accepted after them is inspected, and its inspection is the only
    // one since, so the listing would have shown one of the refused uploads'.
    const control = await upload(`inspected-${randomUUID().slice(0, 8)}`, [
      photo('fine.png', smallPhoto),
    ]);
    assert.equal(control.statusCode, 202, control.body);
    const controlId = control.json<{ id: string }>().id;
    h.terminateOnStop(controlId);
    const row = await h.db
      .selectFrom('jobs')
      .select('input')
      .where('id', '=', controlId)
      .executeTakeFirstOrThrow();
    const batch = /^uploads\/([^/]+)\//.exec(
      (row.input as { media: { key: string }[] }).media[0]!.key,
    )![1]!;
    const inspections = await eventually(
      () => inspectionsSince(since),
      (ids) => ids.length > 0,
      { what: 'the control upload’s inspection in visibility', timeoutMs: 15_000 },
    );
    assert.deepEqual(inspections, [`inspect-upload-${batch}`]);
    await assertOnlyControlJobOf(h, user, 'probe');
  });

  // What the form or its key decides comes before a look at the files: a missing title, or a
  // key whose earlier request made a vlog, starts no inspection (and an upload over the limits
  // without a title is told of its title).
  it('decides a missing title and a key used before without inspecting the files', async () => {
    const user = `decided-${randomUUID().slice(0, 8)}`;
    const since = new Date();
    const before = await storedFiles(storageRoot);
    const large = await renderTestPhoto(tools.ffmpeg, 'png', { size: '640x480' });
    for (const files of [[photo('fine.png', smallPhoto)], [photo('large.png', large)]]) {
      const response = await h.user(user).postForm('/api/vlogs', multipartBody({}, files));
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json<ErrorBody>().error.message, 'body.title: required');
      assert.deepEqual(await storedFiles(storageRoot), before);
    }
    const key = { 'idempotency-key': `decided-${randomUUID()}` };
    const form = (title: string) => multipartBody({ title }, [photo('fine.png', smallPhoto)]);
    const first = await h.user(user).postForm('/api/vlogs', form('Keyed'), key);
    assert.equal(first.statusCode, 202, first.body);
    const firstId = first.json<{ id: string }>().id;
    h.terminateOnStop(firstId);
    const replayed = await h.user(user).postForm('/api/vlogs', form('Keyed'), key);
    assert.equal(replayed.statusCode, 202, replayed.body);
    assert.equal(replayed.json<{ id: string }>().id, firstId);
    const reused = await h.user(user).postForm('/api/vlogs', form('Another'), key);
    assert.equal(reused.statusCode, 422, reused.body);
    assert.equal(reused.json<ErrorBody>().error.code, 'IDEMPOTENCY_KEY_REUSED');

    // The control: one more upload inspected after them, so the listing would have shown any
    // of theirs.
    const control = await upload(user, [photo('fine.png', smallPhoto)]);
    assert.equal(control.statusCode, 202, control.body);
    const controlId = control.json<{ id: string }>().id;
    h.terminateOnStop(controlId);
    const batches = await Promise.all([firstId, controlId].map((id) => uploadBatchOf(id)));
    const expected = batches.map((batch) => `inspect-upload-${batch}`).sort();
    const inspections = await eventually(
      () => inspectionsSince(since),
      (ids) => ids.length >= expected.length,
      { what: 'the two inspections in visibility', timeoutMs: 15_000 },
    );
    assert.deepEqual(inspections, expected);
  });

  /** The upload batch a vlog's media were stored in. */
  async function uploadBatchOf(id: string): Promise<string> {
    const row = await h.db
      .selectFrom('jobs')
      .select('input')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return /^uploads\/([^/]+)\//.exec(
      (row.input as { media: { key: string }[] }).media[0]!.key,
    )![1]!;
  }

  // After the files, a bad field is found as it comes too: what was stored is deleted.
  it('refuses a bad field sent after the files, keeping nothing', async () => {
    const user = `late-bad-field-${randomUUID().slice(0, 8)}`;
    const before = await storedFiles(storageRoot);
    const { payload, headers } = multipartBody({ title: 'Late' }, [photo('fine.png', smallPhoto)]);
    const boundary = headers['content-type']!.split('boundary=')[1]!;
    const end = Buffer.from(`--${boundary}--\r\n`);
    const late = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="durationSeconds"\r\n\r\n5\r\n`,
    );
    const form = {
      payload: Buffer.concat([payload.subarray(0, payload.length - end.length), late, end]),
      headers,
    };
    const response = await h.user(user).postForm('/api/vlogs', form);
    assert.equal(response.statusCode, 400, response.body);
    const { error } = response.json<ErrorBody>();
    assert.equal(error.code, 'VALIDATION_FAILED');
    assert.match(error.message, /^body\.durationSeconds: must be 4, 6 or 8$/);
    assert.deepEqual(await storedFiles(storageRoot), before);
    await assertOnlyControlJobOf(h, user, 'probe');
  });

  // The server's wait is not the client's silence: an inspection longer than the idle timeout
  // was cut off with no answer (the vlog made all the same); a client that left was still made
  // a vlog, and freed its place in the upload cap at once, so closing skipped the cap.
  describe('while the server inspects an upload', () => {
    const idleMs = 1_500;
    /** Longer than the wait past the idle timeout below, with room for a busy machine. */
    const probeTimeoutMs = 8_000;
    let gated: Harness;
    let port: number;
    let dir: string;
    /** While this file is there, every ffprobe waits; removed, they read the file. */
    const hold = () => path.join(dir, 'hold');
    const probes = async () =>
      (await readFile(path.join(dir, 'probing'), 'utf8').catch(() => '')).split('\n').length - 1;
    const probing = (count: number) =>
      eventually(probes, (seen) => seen >= count, { what: `${count} ffprobe runs` });

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-gated-inspection-'));
      const ffprobe = path.join(dir, 'ffprobe');
      // `no-duration`: answers for a clip of 5000×200 whose container states no length.
      await writeFile(
        ffprobe,
        [
          '#!/bin/sh',
          `echo >> '${path.join(dir, 'probing')}'`,
          `if [ -f '${path.join(dir, 'no-duration')}' ]; then`,
          `  echo '{"streams":[{"codec_type":"video","width":5000,"height":200}],"format":{}}'`,
          '  exit 0',
          'fi',
          `while [ -f '${hold()}' ]; do sleep 0.05; done`,
          `exec '${tools.ffprobe}' "$@"`,
          '',
        ].join('\n'),
      );
      await chmod(ffprobe, 0o755);
      gated = await startHarness({
        env: {
          ...env,
          API_IDLE_TIMEOUT_MS: String(idleMs),
          EVENT_STREAM_KEEPALIVE_MS: String(idleMs / 2),
          VLOG_MAX_UPLOADS_IN_PROGRESS_PER_USER: '1',
        },
        mediaStorage: storage,
        worker: async () => ({
          mediaStorage: storage,
          mediaTools: { ...tools, ffprobe },
          inspectionProbeTimeoutMs: probeTimeoutMs,
        }),
      });
      port = Number(new URL(await gated.api.listen()).port);
      await eventually(
        () => gated.api.app.inject({ method: 'GET', url: '/readyz' }),
        (response) => response.statusCode === 200,
        { what: 'a worker with ffmpeg polling the media task queue' },
      );
    });
    after(async () => {
      await gated?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    const clipForm = (title: string) =>
      multipartBody({ title }, [clip('c.mp4', shortClip), clip('d.mp4', shortClip)]);

    it('answers an upload whose inspection outlasts API_IDLE_TIMEOUT_MS', async () => {
      const user = `patient-${randomUUID().slice(0, 8)}`;
      await writeFile(hold(), '');
      const upload = openUpload(
        port,
        await gated.user(user).authorization(),
        clipForm('Patient'),
        undefined,
        ['connection: close'],
      );
      await probing((await probes()) + 1);
      // The condition under test is time itself: the server works past the idle timeout.
      await delay(idleMs * 2);
      await rm(hold());
      const answer = await upload.answer(30_000);
      assert.equal(answer.status, 202, answer.raw);
      const body = answer.raw.slice(answer.raw.indexOf('\r\n\r\n') + 4);
      gated.terminateOnStop((JSON.parse(body) as { id: string }).id);
    });

    it('stops an upload whose client left while it was inspected, holding its place until then', async () => {
      const user = `leaver-${randomUUID().slice(0, 8)}`;
      const before = await storedFiles(storageRoot);
      await writeFile(hold(), '');
      const upload = openUpload(port, await gated.user(user).authorization(), clipForm('Left'));
      await probing((await probes()) + 1);
      upload.socket.destroy();
      const meanwhile = await gated.user(user).postForm('/api/vlogs', clipForm('Meanwhile'));
      assert.equal(meanwhile.statusCode, 429, meanwhile.body);
      assert.equal(meanwhile.json<ErrorBody>().error.code, 'TOO_MANY_UPLOADS');
      await rm(hold());
      await eventually(
        () => storedFiles(storageRoot),
        (files) => files.length === before.length,
        { what: 'the upload of the client that left deleted' },
      );
      assert.deepEqual(await storedFiles(storageRoot), before);
      const after = await eventually(
        () => gated.user(user).postForm('/api/vlogs', clipForm('After')),
        (response) => response.statusCode !== 429,
        { what: 'the place of the upload that was stopped given back' },
      );
      assert.equal(after.statusCode, 202, after.body);
      const id = after.json<{ id: string }>().id;
      gated.terminateOnStop(id);
      const rows = await gated.db
        .selectFrom('jobs')
        .select('id')
        .where('owner_id', '=', user)
        .execute();
      assert.deepEqual(rows, [{ id }], 'no vlog for the client that left');
    });

    it('refuses a file ffprobe cannot read in time with 422 MEDIA_INSPECTION_TIMEOUT, reading no more', async () => {
      const user = `stalling-${randomUUID().slice(0, 8)}`;
      const before = await storedFiles(storageRoot);
      await writeFile(hold(), '');
      try {
        const since = await probes();
        const response = await gated.user(user).postForm('/api/vlogs', clipForm('Stalling'));
        assert.equal(response.statusCode, 422, response.body);
        const { error } = response.json<ErrorBody>();
        assert.equal(error.code, 'MEDIA_INSPECTION_TIMEOUT');
        assert.match(error.message, /^media: c\.mp4 could not be read in time/);
        assert.deepEqual(error.details, { file: 'c.mp4' });
        assert.equal((await probes()) - since, 1, 'the file after it was not read');
      } finally {
        await rm(hold());
      }
      assert.deepEqual(await storedFiles(storageRoot), before);
      await assertOnlyControlJobOf(gated, user, 'probe');
    });

    it('holds a clip whose container states no length to the side limit', async () => {
      const user = `no-length-${randomUUID().slice(0, 8)}`;
      await writeFile(path.join(dir, 'no-duration'), '');
      try {
        const response = await gated
          .user(user)
          .postForm('/api/vlogs', multipartBody({ title: 'Wide' }, [clip('wide.mp4', shortClip)]));
        assert.equal(response.statusCode, 422, response.body);
        assert.equal(response.json<ErrorBody>().error.code, 'MEDIA_RESOLUTION_TOO_HIGH');
      } finally {
        await rm(path.join(dir, 'no-duration'));
      }
    });
  });
});
