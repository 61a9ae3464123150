// A Veo submission that gets no answer (its request timed out here; a worker killed mid-request
// is the same to the retry) may have been taken by Veo all the same: the retry looks for the
// video in the attempt's output folder before it pays for another generation, and sends again
// only once none can still come.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { jpegBytes, multipartBody } from '../fixtures/media.js';
import { isTerminalStatus, type JobStatus } from '../../src/jobs/model.js';
import { unansweredSubmissions } from '../../src/metrics/metrics.js';
import { CloudFakes } from '../support/cloud-fakes.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness, type UserClient } from '../support/harness.js';

interface VlogView {
  id: string;
  status: JobStatus;
  phase: string | null;
  error: { code: string; message: string } | null;
}

/** One request's time limit: a submission answered later than this got no answer. */
const requestTimeoutMs = 1_500;
/** How long the retry looks for the video of a submission that got no answer. */
const unansweredWaitMs = 5_000;
const unansweredPhase =
  /^waiting for the video generation an unanswered submission may have started/;

const vlogForm = (title: string) =>
  multipartBody({ title, durationSeconds: '6' }, [
    { field: 'media', filename: 'beach.jpg', contentType: 'image/jpeg', bytes: jpegBytes() },
  ]);

describe('a vlog whose Veo submission got no answer', { timeout: 180_000 }, () => {
  let fakes: CloudFakes;
  let h: Harness;
  let user: UserClient;

  before(async () => {
    fakes = await CloudFakes.start();
    fakes.env = {
      ...fakes.env,
      PROVIDER_REQUEST_TIMEOUT_MS: String(requestTimeoutMs),
      VEO_UNANSWERED_SUBMISSION_WAIT_MS: String(unansweredWaitMs),
    };
    fakes.google.scenario.videoBytes = 1024;
    h = await startHarness({ env: fakes.env, worker: (db) => fakes.activityDependencies(db) });
    user = h.user('unanswered');
  });
  afterEach(() => {
    fakes.google.resetScenario();
    fakes.google.scenario.videoBytes = 1024;
  });
  after(async () => {
    await h.stop();
    await fakes.stop();
  });

  /** The vlog's end, whichever it is: a test waiting for it to complete fails at once otherwise. */
  async function ended(id: string): Promise<VlogView> {
    return user.awaitJob<VlogView>('vlog', id, (view) => isTerminalStatus(view.status), {
      timeoutMs: 120_000,
    });
  }

  async function submit(title: string): Promise<string> {
    const response = await user.postForm('/api/vlogs', vlogForm(title));
    assert.equal(response.statusCode, 202, response.body);
    const { id } = response.json<VlogView>();
    h.terminateOnStop(id);
    return id;
  }

  /** Waits until the vlog waits for the video of its submission that got no answer. */
  async function untilWaitingForUnanswered(id: string): Promise<void> {
    const waiting = await user.awaitJob<VlogView>(
      'vlog',
      id,
      (view) => unansweredPhase.test(view.phase ?? '') || isTerminalStatus(view.status),
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    assert.equal(waiting.status, 'generating', JSON.stringify(waiting));
  }

  const paidSubmissions = (id: string) =>
    fakes.google.paidCallsMentioning(id).filter((call) => call.method === 'predictLongRunning');
  const phasesOf = async (id: string) =>
    (
      await h.db
        .selectFrom('job_events')
        .select('phase')
        .where('job_id', '=', id)
        .orderBy('seq')
        .execute()
    ).map((event) => event.phase);
  const videoCharges = (id: string) =>
    h.db
      .selectFrom('cost_ledger')
      .select('idempotency_key')
      .where('job_id', '=', id)
      .where('kind', '=', 'video')
      .execute();
  /** What the worker (in this process) counted of unanswered submissions' retries. */
  const counted = async (outcome: 'found' | 'sent_again' | 'abandoned') =>
    (await unansweredSubmissions.get()).values.find(
      (value) => value.labels.provider === 'veo' && value.labels.outcome === outcome,
    )?.value ?? 0;
  const notesLeft = (id: string) =>
    h.db.selectFrom('provider_submissions').select('idempotency_key').where('job_id', '=', id);

  it('finds the video of a generation Veo took, and never pays for a second', async () => {
    // Veo takes the request at once (the video is written straight away) and answers too late.
    fakes.google.scenario.startAnswerDelayMs = requestTimeoutMs + 3_000;
    const foundBefore = await counted('found');
    const id = await submit('Answered too late');

    const done = await ended(id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(paidSubmissions(id).length, 1, 'one generation submitted and paid for');
    const operations = await h.db
      .selectFrom('provider_operations')
      .select(['operation_name', 'outcome'])
      .where('job_id', '=', id)
      .execute();
    assert.equal(operations.length, 1, JSON.stringify(operations));
    assert.match(operations[0]!.operation_name, /^found-output:gs:\/\/.*\/sample_0\.mp4$/);
    assert.equal(operations[0]!.outcome, 'succeeded');
    assert.equal((await videoCharges(id)).length, 1, 'the found video is charged once');
    assert.deepEqual(await notesLeft(id).execute(), []);
    assert.equal((await counted('found')) - foundBefore, 1);
  });

  it('sends again, once, a submission Veo never took, after waiting for its video in vain', async () => {
    // The request hangs unanswered and Veo makes nothing of it.
    fakes.google.scenario.holdStarts = true;
    const sentBefore = fakes.google.calls.predictLongRunning;
    const sentAgainBefore = await counted('sent_again');
    const id = await submit('Never taken');
    await eventually(
      async () => fakes.google.calls.predictLongRunning - sentBefore,
      (sent) => sent === 1,
      { what: 'the first submission sent', timeoutMs: 60_000, intervalMs: 20 },
    );
    const firstSentBy = Date.now();
    fakes.google.scenario.holdStarts = false;

    await untilWaitingForUnanswered(id);
    assert.equal(paidSubmissions(id).length, 0, 'nothing sent again while its video may come');

    const done = await ended(id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const [paid] = paidSubmissions(id);
    assert.equal(paidSubmissions(id).length, 1);
    assert.ok(
      paid!.at - firstSentBy >= unansweredWaitMs - 1_000,
      `sent again ${paid!.at - firstSentBy} ms after the first: before the wait was over`,
    );
    assert.equal(fakes.google.calls.predictLongRunning - sentBefore, 2);
    assert.equal((await videoCharges(id)).length, 1);
    assert.deepEqual(await notesLeft(id).execute(), []);
    assert.equal((await counted('sent_again')) - sentAgainBefore, 1);
  });

  it('forgets the note of a submission still unanswered when its vlog is cancelled, sending nothing more', async () => {
    fakes.google.scenario.holdStarts = true;
    const sentBefore = fakes.google.calls.predictLongRunning;
    const abandonedBefore = await counted('abandoned');
    const id = await submit('Cancelled while unanswered');
    await untilWaitingForUnanswered(id);
    assert.equal((await user.cancel('vlog', id, { reason: 'no longer needed' })).statusCode, 202);
    const done = await ended(id);
    assert.equal(done.status, 'cancelled');
    assert.deepEqual(await notesLeft(id).execute(), []);
    assert.equal(fakes.google.calls.predictLongRunning - sentBefore, 1, 'sent once, never again');
    // Veo may bill it: operators see it counted.
    assert.equal((await counted('abandoned')) - abandonedBefore, 1);
  });

  it('sends again at once a submission Veo answered with an error: it took nothing', async () => {
    fakes.google.scenario.startFailures = [{ status: 503 }];
    const sentBefore = fakes.google.calls.predictLongRunning;
    const id = await submit('Refused once');
    const done = await ended(id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(fakes.google.calls.predictLongRunning - sentBefore, 2);
    assert.equal(paidSubmissions(id).length, 1);
    const phases = await phasesOf(id);
    assert.ok(!phases.some((phase) => unansweredPhase.test(phase ?? '')), JSON.stringify(phases));
  });
});
