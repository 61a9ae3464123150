// The production shape: an API killed (SIGKILL, no goodbye) while a vlog's files arrive leaves
// what it stored of them. The media sweep deletes that upload, and keeps the uploads of vlogs
// the API accepted.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mintToken } from '../../src/auth.js';
import { taskQueueNames } from '../../src/capacity/task-queues.js';
import type { MediaSweepInput, MediaSweepResult } from '../../src/jobs/contracts.js';
import { uploadFolder } from '../../src/kinds/vlog/upload-rules.js';
import { findMediaTools } from '../../src/media/tools.js';
import { multipartBody, renderTestPhoto, renderTestVideo } from '../fixtures/media.js';
import { serviceEnv, testJwtSecret } from '../support/harness.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/eventually.js';
import { onFreePorts } from '../support/ports.js';
import { startReadyService, type ServiceProcess } from '../support/processes.js';
import { storedFiles, storedMediaOf } from '../support/stored-files.js';
import { testTemporal, uniqueTaskQueue } from '../support/temporal.js';

const dayMs = 24 * 3_600_000;

describe('an upload cut off by its API dying', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let baseUrl: string;
  let token: string;
  let api: ServiceProcess;
  const temporal = testTemporal();
  const dataDir = path.join(os.tmpdir(), `vlogflow-upload-orphans-${randomUUID()}`);
  const storageRoot = path.join(dataDir, 'storage');
  const taskQueue = uniqueTaskQueue('upload-orphans');
  const running: ServiceProcess[] = [];

  before(async () => {
    database = await createTestDatabase();
    const port = await onFreePorts(1, async ([port]) => {
      env = {
        ...serviceEnv({ dataDir, databaseUrl: database.url, taskQueue }),
        API_PORT: String(port),
      };
      api = await startReadyService('api', env, running);
      return port!;
    });
    await startReadyService('worker', env, running);
    baseUrl = `http://127.0.0.1:${port}`;
    token = await mintToken(testJwtSecret, 'uploader');
  });
  after(async () => {
    for (const service of running) await service.stop('SIGKILL');
    await temporal.close();
    await database.drop();
  });

  const recordedUploads = () =>
    database.db.selectFrom('upload_batches').select(['batch_id', 'job_id']).execute();

  it('is deleted by the media sweep, which keeps the upload of an accepted vlog', async () => {
    const tools = await findMediaTools();
    assert.ok(tools, 'ffmpeg ships with the npm dependencies');
    const photo = {
      field: 'media',
      filename: 'sunrise.jpg',
      contentType: 'image/jpeg',
      bytes: await renderTestPhoto(tools.ffmpeg, 'jpg'),
    };
    const clip = {
      field: 'media',
      filename: 'waves.mp4',
      contentType: 'video/mp4',
      bytes: await renderTestVideo(tools.ffmpeg, 2, { size: '640x480' }),
    };
    const headers = { authorization: `Bearer ${token}` };

    const accepted = multipartBody({ title: 'Kept', durationSeconds: '4' }, [photo]);
    const response = await fetch(`${baseUrl}/api/vlogs`, {
      method: 'POST',
      headers: { ...headers, ...accepted.headers },
      body: accepted.payload,
    });
    assert.equal(response.status, 202, await response.clone().text());
    const vlog = (await response.json()) as { id: string };
    // Its job was recorded, so its upload is the job's: nothing is left for the sweep to check.
    assert.deepEqual(await recordedUploads(), []);
    const cancel = await fetch(`${baseUrl}/api/vlogs/${vlog.id}/cancel`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(cancel.status, 202, await cancel.text());

    // The photo arrives whole and the clip only in part; then the API dies mid-write.
    const form = multipartBody({ title: 'Cut off', durationSeconds: '4' }, [photo, clip]);
    assert.ok(clip.bytes.length > 16_384, `the clip is only ${clip.bytes.length} bytes`);
    const cut = form.payload.indexOf(clip.bytes) + 16_384;
    const request = http.request(`${baseUrl}/api/vlogs`, {
      method: 'POST',
      headers: {
        ...headers,
        ...form.headers,
        'content-length': String(form.payload.length),
      },
    });
    request.on('error', () => undefined);
    request.write(form.payload.subarray(0, cut));
    const [left] = await eventually(recordedUploads, (rows) => rows.length === 1, {
      what: 'the cut-off upload recorded',
      timeoutMs: 30_000,
    });
    assert.equal(left!.job_id, null);
    const folder = path.join(storageRoot, uploadFolder(left!.batch_id));
    await eventually(
      () => storedFiles(folder),
      (files) =>
        files.some((file) => file.startsWith('00-')) &&
        files.some((file) => file.endsWith('.partial')),
      { what: 'the photo stored and the clip being written', timeoutMs: 30_000 },
    );
    api.child.kill('SIGKILL');
    await api.exited;
    request.destroy();

    const input: MediaSweepInput = {
      taskQueue: taskQueueNames(taskQueue).storage,
      retentionMs: 30 * dayMs,
      retryWindowMs: 7 * dayMs,
      batchSize: 10,
      orphanUploadAgeMs: 0,
    };
    const result = await temporal.client.workflow.execute<
      (input: MediaSweepInput) => Promise<MediaSweepResult>
    >('sweepExpiredMedia', {
      taskQueue,
      workflowId: `media-sweep-now-${randomUUID()}`,
      args: [input],
    });

    assert.equal(result.orphanUploads, 1);
    assert.equal(
      await stat(folder).catch(() => null),
      null,
      `${folder} left behind: ${(await storedFiles(folder)).join(', ')}`,
    );
    assert.deepEqual(await recordedUploads(), []);
    const kept = await storedMediaOf(database.db, vlog.id);
    assert.equal(kept.length, 1);
    for (const { key } of kept)
      assert.ok(await stat(path.join(storageRoot, key)), `${key} deleted`);
  });
});
