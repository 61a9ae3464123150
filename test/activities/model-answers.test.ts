import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { loadConfig } from '../../src/config.js';
import { jobLedger } from '../../src/db/costs.js';
import { applyJobUpdate, insertJob } from '../../src/db/jobs.js';
import type { MediaRef } from '../../src/jobs/contracts.js';
import type { AnalyzeMediaInput } from '../../src/kinds/vlog/activities/analyze.js';
import { createVlogActivities } from '../../src/kinds/vlog/activities/index.js';
import { createProviders } from '../../src/providers/index.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { pngBytes } from '../fixtures/media.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { jobRecord, jobSnapshot, vlogInput } from '../support/jobs.js';

// A vlog's media analysis is paid per call like an AI generation: an analyzeMedia attempt that
// follows one whose result never reached Temporal uses the analysis that attempt was charged
// for; a retry of the job (a new run, so a new attempt) asks Gemini again.
describe('analyzeMedia retried after its answer', () => {
  let test: TestDatabase;
  const google = new FakeGoogle(async () => undefined);
  const storage = new LocalMediaStorage(
    path.join(os.tmpdir(), `vlogflow-answers-${randomUUID()}`),
    { publicUrl: 'http://api.test', secret: 's' },
  );

  before(async () => {
    test = await createTestDatabase();
    await google.start();
  });
  after(async () => {
    await test.drop();
    await google.stop();
  });

  /** Runs analyzeMedia as attempt `attempt` of its activity in the job's run `runId`. */
  function analyze(input: AnalyzeMediaInput, runId: string, attempt: number) {
    const activities = createVlogActivities({
      db: test.db,
      mediaStorage: storage,
      providers: createProviders(
        loadConfig({ GEMINI_API_KEY: 'test-key', GEMINI_BASE_URL: google.url }),
        { mediaStorage: storage, mediaTools: null },
      ),
      mediaTools: null,
    });
    return new MockActivityEnvironment({
      activityType: 'analyzeMedia',
      activityId: '2',
      attempt,
      workflowExecution: { workflowId: input.jobId, runId },
    }).run((given: AnalyzeMediaInput) => activities.analyzeMedia(given), input);
  }

  const keptAnswers = (jobId: string) =>
    test.db.selectFrom('model_answers').select('call_key').where('job_id', '=', jobId).execute();

  it('reuses the charged analysis in the same run, asks again in a new run, and forgets it when the job ends', async () => {
    const jobId = `vlog-${randomUUID()}`;
    const bytes = pngBytes();
    const media: MediaRef = {
      key: `uploads/${jobId}/photo.png`,
      name: 'photo.png',
      contentType: 'image/png',
      kind: 'image',
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    };
    await storage.putStream(media.key, Readable.from([bytes]), media.contentType);
    await insertJob(
      test.db,
      jobRecord({ id: jobId, kind: 'vlog', type: 'VLOG', input: vlogInput({ media: [media] }) }),
      'processing',
    );
    const input: AnalyzeMediaInput = {
      jobId,
      media: [media],
      brief: { title: 'A day out', prompt: null, style: null, durationSeconds: 8 },
    };

    const first = await analyze(input, 'run-1', 1);
    assert.equal(google.calls.generateContent, 1);
    assert.equal((await keptAnswers(jobId)).length, 1, 'the charged answer is kept');

    // The first attempt's result was lost: its retry in the same run asks nobody.
    const retried = await analyze(input, 'run-1', 2);
    assert.deepEqual(retried, first, 'the retry has the answer that was paid for');
    assert.equal(google.calls.generateContent, 1, 'Gemini was asked once');
    assert.equal((await jobLedger(test.db, jobId)).length, 1, 'charged once');

    // A retry of the job is a new run: it asks, and pays, again.
    await analyze(input, 'run-2', 1);
    assert.equal(google.calls.generateContent, 2, 'the job retry asked Gemini again');
    assert.equal((await jobLedger(test.db, jobId)).length, 2);

    const ended = await applyJobUpdate(test.db, {
      jobId,
      seq: 5,
      snapshot: jobSnapshot({ status: 'completed', progress: 100, runId: 'run-2' }),
    });
    assert.ok(ended, 'the end was projected');
    assert.deepEqual(await keptAnswers(jobId), [], 'the job’s end forgets its kept answers');
    await analyze(input, 'run-3', 1);
    assert.deepEqual(await keptAnswers(jobId), [], 'nothing is kept for a job that has ended');
  });
});
