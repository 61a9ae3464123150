import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { JobRow } from '../../src/db/schema.js';
import { findOwnedJob } from '../../src/jobs/repository.js';
import { mp4Bytes, multipartBody, pngBytes, jpegBytes } from '../fixtures/media.js';
import { createTestApi, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/eventually.js';
import { testTemporal, uniqueTaskQueue, withWorker } from '../support/temporal.js';
import { VlogHarness } from '../support/vlog-harness.js';

interface VlogView {
  id: string;
  status: string;
  progress: number;
  phase: string | null;
  attempt: number;
  error: { code: string; message: string } | null;
  videoUrl: string | null;
  shareUrl: string | null;
  durationSeconds: number | null;
  media: { name: string; contentType: string; size: number }[];
}

function vlogForm(fields: Record<string, string> = { title: 'Beach day' }) {
  return multipartBody(fields, [
    { field: 'media', filename: 'sunrise.png', contentType: 'image/png', bytes: pngBytes() },
    { field: 'media', filename: 'friends.jpg', contentType: 'image/jpeg', bytes: jpegBytes() },
    {
      field: 'media',
      filename: 'waves.mp4',
      contentType: 'video/mp4',
      bytes: mp4Bytes(20 * 1024 * 1024),
    },
  ]);
}

describe('vlogs end to end', () => {
  let harness: VlogHarness;
  let test: TestDatabase;
  let api: TestApi;
  let auth: string;
  const temporal = testTemporal();
  const taskQueue = uniqueTaskQueue('vlog-e2e');

  before(async () => {
    harness = await VlogHarness.start();
    test = await createTestDatabase();
    api = await createTestApi({ db: test.db, temporal, taskQueue, env: harness.env });
    auth = await api.authFor('alice');
  });
  after(async () => {
    await api.app.close();
    await temporal.close();
    await test.drop();
    await harness.stop();
  });

  async function createVlog(form = vlogForm(), headers: Record<string, string> = {}) {
    const response = await api.app.inject({
      method: 'POST',
      url: '/api/vlogs',
      headers: { authorization: auth, ...form.headers, ...headers },
      payload: form.payload,
    });
    return {
      status: response.statusCode,
      body: response.json<VlogView>(),
      headers: response.headers,
    };
  }

  async function getVlog(id: string): Promise<VlogView> {
    const response = await api.app.inject({
      method: 'GET',
      url: `/api/vlogs/${id}`,
      headers: { authorization: auth },
    });
    assert.equal(response.statusCode, 200, response.body);
    return response.json<VlogView>();
  }

  function waitForStatus(id: string, statuses: string[], seen: VlogView[] = []) {
    return eventually(
      async () => {
        const view = await getVlog(id);
        seen.push(view);
        return view;
      },
      (view) => statuses.includes(view.status),
      { what: `vlog ${statuses.join('/')}`, timeoutMs: 60_000, intervalMs: 50 },
    );
  }

  it('turns uploads into a delivered video through analysis, generation and transfer', async () => {
    await withWorker(taskQueue, await harness.activityDependencies(test.db), async () => {
      harness.google.scenario.pollsBeforeDone = 3;
      harness.google.scenario.videoBytes = 20 * 1024 * 1024;
      const accepted = await createVlog();
      assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
      assert.equal(accepted.body.status, 'pending');
      assert.deepEqual(
        accepted.body.media.map((item) => item.contentType),
        ['image/png', 'image/jpeg', 'video/mp4'],
      );

      const seen: VlogView[] = [];
      const done = await waitForStatus(accepted.body.id, ['completed', 'failed'], seen);
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
      assert.equal(done.progress, 100);
      assert.equal(done.durationSeconds, 8);
      const statuses = [...new Set(seen.map((view) => view.status))];
      assert.ok(statuses.includes('generating'), statuses.join());
      assert.deepEqual(
        seen.map((view) => view.progress),
        [...seen.map((view) => view.progress)].sort((a, b) => a - b),
        'progress went backwards',
      );

      // The video plays from R2 (moto) and is the one Veo wrote to Cloud Storage.
      assert.ok(done.videoUrl && done.shareUrl);
      const video = await fetch(done.videoUrl);
      assert.equal(video.status, 200);
      assert.equal((await video.arrayBuffer()).byteLength, 20 * 1024 * 1024);

      // One paid generation; the clip went through the Files API, the photos inline.
      assert.equal(harness.google.calls.predictLongRunning, 1);
      assert.equal(harness.google.calls.fileUploads, 1);
      assert.equal(harness.google.calls.generateContent, 1);
      const row = (await findOwnedJob(test.db, 'alice', accepted.body.id)) as JobRow;
      assert.equal(row.attempt, 1);
    });
  });
});
