import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { after, afterEach, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { formatMoney, parseMoney } from '../../src/costs/money.js';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createJobReconcilerActivities } from '../../src/activities/job-reconciler.js';
import { ApiError } from '../../src/api/errors.js';
import { createJobActions } from '../../src/api/services/job-actions.js';
import { createRedrives } from '../../src/api/services/redrives.js';
import { applyJobUpdate, insertJob } from '../../src/db/jobs.js';
import { JobAttemptKey } from '../../src/jobs/search-attributes.js';
import { jpegBytes, multipartBody, pngBytes } from '../fixtures/media.js';
import { createEmptyDatabase, createTestDatabase, type TestDatabase } from '../support/database.js';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness, type TestApi, type UserClient } from '../support/harness.js';
import { generationBucket, CloudFakes } from '../support/cloud-fakes.js';
import { jobRecord, jobSnapshot } from '../support/jobs.js';
import { testLogger } from '../support/logs.js';
import { parseMetrics } from '../support/metrics.js';
import { freePort } from '../support/ports.js';
import { fromSource, projectRoot } from '../support/processes.js';

interface VlogView {
  id: string;
  status: string;
  attempt: number;
  error: { code: string; message: string } | null;
}

interface Redrive {
  jobId: string;
  kind: string;
  ownerId: string;
  fromStage: string | null;
  attempt: number;
  via: 'retry-update' | 'new-run';
  previousRunId: string;
}

interface RedriveOutcome {
  dryRun: boolean;
  redriven: Redrive[];
  skipped: { jobId: string; code: string; message: string }[];
}

const form = () =>
  multipartBody({ title: 'Re-driven' }, [
    { field: 'media', filename: 'sunrise.png', contentType: 'image/png', bytes: pngBytes() },
    { field: 'media', filename: 'friends.jpg', contentType: 'image/jpeg', bytes: jpegBytes() },
  ]);

/** `npm run redrive -- …` as an operator runs it: its exit code, the outcome it printed, its log. */
async function runRedriveCli(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [...fromSource, 'src/redrive/redrive-cli.ts', ...args],
      { cwd: projectRoot, env: { ...process.env, ...env } },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

// Vlogs that failed at the transfer, after a paid generation that succeeded, re-driven by an
// operator: whether their failed run is still open (retry Update) or closed (a new run of the
// same workflow id from what the closed run stored), they resume at the transfer, with no
// second analysis and no second generation, their attempt counted and linked.
describe('re-drives of failed vlogs', () => {
  let fakes: CloudFakes;
  let database: TestDatabase;
  let h: Harness;
  let operator: UserClient;
  /** An API whose vlogs close their workflow at once when they fail (a 1 ms retry window). */
  let closing: TestApi;
  let cliEnv: Record<string, string>;

  before(async () => {
    fakes = await CloudFakes.start();
    database = await createTestDatabase();
    h = await startHarness({
      db: database.db,
      env: fakes.env,
      worker: (db) => fakes.activityDependencies(db),
    });
    operator = h.admin('operator');
    closing = await h.startApi({ env: { ...fakes.env, JOB_RETRY_WINDOW_MS: '1' } });
    cliEnv = {
      ...fakes.env,
      DATABASE_URL: database.url,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      TEMPORAL_NAMESPACE: testEnv.temporalNamespace,
      TEMPORAL_TASK_QUEUE: h.taskQueue,
      LOG_LEVEL: 'info',
    };
  });
  afterEach(() => fakes.google.resetScenario());
  after(async () => {
    await h.stop();
    await database.drop();
    await fakes.stop();
  });

  /** A vlog whose transfer fails: Veo "succeeds" without writing the video. */
  async function failedAtTransfer(owner: UserClient) {
    fakes.google.scenario.writeVideo = false;
    const { id } = await owner.startJob('vlog', form());
    const failed = await owner.awaitJob<VlogView>('vlog', id, (view) => view.status === 'failed', {
      what: 'vlog failed',
    });
    assert.equal(failed.error?.code, 'TRANSFER_FAILED', JSON.stringify(failed.error));
    return id;
  }

  /** The video turns up where Veo said it would be (as if storage had been slow). */
  async function videoArrives(id: string) {
    const operation = [...fakes.google.operations.values()].find((op) =>
      op.storageUri.includes(id),
    );
    assert.ok(operation?.videoUri);
    await fakes.gcsClient
      .bucket(generationBucket)
      .file(operation.videoUri.replace(`gs://${generationBucket}/`, ''))
      .save(Buffer.alloc(1024, 7), { resumable: false });
  }

  async function redrive(body: object) {
    const response = await operator.post('/api/admin/redrives', body);
    assert.ok([200, 202].includes(response.statusCode), response.body);
    return { status: response.statusCode, outcome: response.json<RedriveOutcome>() };
  }

  const scrape = async () =>
    parseMetrics((await h.api.app.inject({ method: 'GET', url: '/metrics' })).body);

  const runsOf = async (workflowId: string) => {
    const runs = [];
    for await (const run of h.temporal.client.workflow.list({
      query: `WorkflowId = "${workflowId}"`,
    }))
      runs.push(run);
    return runs;
  };

  it('resumes a closed vlog at its transfer in a new run, from the CLI, after a dry run that changes nothing', async () => {
    const owner = closing.user('carol');
    const calls = { ...fakes.google.calls };
    const id = await failedAtTransfer(owner);
    const handle = h.temporal.client.workflow.getHandle(id);
    const failedRun = await eventually(
      () => handle.describe(),
      (description) => description.status.name === 'FAILED',
      { what: 'the failed run closed' },
    );

    // The operator finds the group, with this vlog in it.
    const groups = await operator.get('/api/admin/failure-groups?kind=vlog&code=TRANSFER_FAILED');
    const group = groups
      .json<{ groups: { fingerprint: string; exampleJobIds: string[] }[] }>()
      .groups.find((candidate) => candidate.exampleJobIds.includes(id));
    assert.equal(group?.fingerprint, 'vlog:transferring:TRANSFER_FAILED:-');

    // A dry run says what would run, over the API and from the CLI, and changes nothing.
    const rowBefore = await h.db.selectFrom('jobs').selectAll().where('id', '=', id).execute();
    const plan: Redrive = {
      jobId: id,
      kind: 'vlog',
      ownerId: 'carol',
      fromStage: 'transferring',
      attempt: 2,
      via: 'new-run',
      previousRunId: failedRun.runId,
    };
    const dry = await redrive({ jobIds: [id], dryRun: true });
    assert.equal(dry.status, 200);
    assert.deepEqual(dry.outcome, { dryRun: true, redriven: [plan], skipped: [] });
    const cliDry = await runRedriveCli(['--jobs', id, '--dry-run'], cliEnv);
    assert.equal(cliDry.code, 0, cliDry.stderr);
    assert.deepEqual(JSON.parse(cliDry.stdout), { dryRun: true, redriven: [plan], skipped: [] });
    assert.deepEqual(
      await h.db.selectFrom('jobs').selectAll().where('id', '=', id).execute(),
      rowBefore,
    );
    assert.deepEqual(await h.db.selectFrom('job_redrives').selectAll().execute(), []);
    assert.equal((await handle.describe()).runId, failedRun.runId);

    await videoArrives(id);
    const cli = await runRedriveCli(['--jobs', id], cliEnv);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(JSON.parse(cli.stdout), { dryRun: false, redriven: [plan], skipped: [] });

    const done = await owner.awaitJob<VlogView>('vlog', id, (view) => view.status === 'completed', {
      what: 're-driven vlog completed',
    });
    assert.equal(done.attempt, 2);
    // One analysis and one paid generation in all: the new run took both from the closed one.
    assert.equal(fakes.google.calls.generateContent - calls.generateContent, 1);
    assert.equal(fakes.google.calls.predictLongRunning - calls.predictLongRunning, 1);

    // The attempts are linked: in the database, and in Temporal under the job's workflow id.
    const [link] = await h.db
      .selectFrom('job_redrives')
      .selectAll()
      .where('job_id', '=', id)
      .execute();
    assert.equal(link?.attempt, 2);
    assert.equal(link?.previous_run_id, failedRun.runId);
    assert.equal(link?.via, 'new-run');
    assert.equal(link?.from_stage, 'transferring');
    assert.match(link?.requested_by ?? '', /^cli:/);
    const newRun = await handle.describe();
    assert.notEqual(newRun.runId, failedRun.runId);
    assert.deepEqual(newRun.memo?.['redriveOf'], {
      runId: failedRun.runId,
      requestedBy: link?.requested_by,
    });
    assert.equal(newRun.typedSearchAttributes.get(JobAttemptKey), 2);
    // Visibility lags behind the runs themselves.
    await eventually(
      async () => (await runsOf(id)).map((run) => run.status.name).sort(),
      (statuses) => statuses.join() === 'COMPLETED,FAILED',
      { what: 'both runs listed under the workflow id, one failed and one completed' },
    );
  });

  it('sends the retry Update to a vlog whose failed run is still open, by its failure group', async () => {
    const owner = h.user('dave');
    const calls = { ...fakes.google.calls };
    const id = await failedAtTransfer(owner);
    const failedRunId = (await h.temporal.client.workflow.getHandle(id).describe()).runId;
    await videoArrives(id);

    const { status, outcome } = await redrive({ group: 'vlog:transferring:TRANSFER_FAILED:-' });
    assert.equal(status, 202);
    assert.deepEqual(outcome, {
      dryRun: false,
      redriven: [
        {
          jobId: id,
          kind: 'vlog',
          ownerId: 'dave',
          fromStage: 'transferring',
          attempt: 2,
          via: 'retry-update',
          previousRunId: failedRunId,
        },
      ],
      skipped: [],
    });
    const done = await owner.awaitJob<VlogView>('vlog', id, (view) => view.status === 'completed', {
      what: 're-driven vlog completed',
    });
    assert.equal(done.attempt, 2);
    assert.equal(fakes.google.calls.generateContent - calls.generateContent, 1);
    assert.equal(fakes.google.calls.predictLongRunning - calls.predictLongRunning, 1);
    const [link] = await h.db
      .selectFrom('job_redrives')
      .selectAll()
      .where('job_id', '=', id)
      .execute();
    assert.equal(link?.via, 'retry-update');
    assert.equal(link?.requested_by, 'operator');
    // The group is empty now: nothing is re-driven twice.
    const again = await redrive({ group: 'vlog:transferring:TRANSFER_FAILED:-', dryRun: true });
    assert.deepEqual(again.outcome.redriven, []);
  });

  /**
   * Re-drives a job as an operator whose retry Update Temporal does not answer in time (no
   * worker polling, say): the job is skipped with JOB_CONTROL_TIMEOUT and keeps the attempt's
   * hold and the re-drive's record. Returns what the job's holds then are.
   */
  async function redriveUnanswered(id: string) {
    const budgets = { daily: null, monthly: null };
    const actions = createJobActions(
      h.temporal,
      { timeoutMs: 5_000 },
      { db: h.db, budgets, maxJobsInFlight: 100 },
    );
    const unanswered = createRedrives({
      db: h.db,
      temporal: h.temporal,
      actions: {
        ...actions,
        sendRetry: () =>
          Promise.reject(new ApiError('JOB_CONTROL_TIMEOUT', 'No worker took the retry request')),
      },
      budgets,
      maxJobsInFlight: 100,
      timeoutMs: 5_000,
      logger: testLogger(),
    });
    const outcome = await unanswered.redrive(
      { jobIds: [id] },
      { dryRun: false, requestedBy: 'ops' },
    );
    assert.deepEqual(outcome.redriven, []);
    assert.equal(outcome.skipped[0]?.code, 'JOB_CONTROL_TIMEOUT');
    assert.deepEqual(await holdsOf(id), [
      { attempt: 1, state: 'released' },
      { attempt: 2, state: 'held' },
    ]);
    assert.deepEqual(await redrivesOf(id), [
      { attempt: 2, via: 'retry-update', requested_by: 'ops' },
    ]);
  }

  const holdsOf = (id: string) =>
    h.db
      .selectFrom('cost_holds')
      .select(['attempt', 'state'])
      .where('job_id', '=', id)
      .orderBy('attempt')
      .execute();

  const redrivesOf = (id: string) =>
    h.db
      .selectFrom('job_redrives')
      .select(['attempt', 'via', 'requested_by'])
      .where('job_id', '=', id)
      .execute();

  it('re-drives a vlog on the hold and record of an earlier re-drive that Temporal did not answer', async () => {
    const owner = h.user('ursula');
    const calls = { ...fakes.google.calls };
    const id = await failedAtTransfer(owner);
    await videoArrives(id);
    await redriveUnanswered(id);

    const { outcome } = await redrive({ jobIds: [id] });
    assert.deepEqual(outcome.skipped, []);
    assert.equal(outcome.redriven[0]?.attempt, 2);
    assert.equal(outcome.redriven[0]?.via, 'retry-update');
    const done = await owner.awaitJob<VlogView>('vlog', id, (view) => view.status === 'completed', {
      what: 're-driven vlog completed',
    });
    assert.equal(done.attempt, 2);
    assert.equal(fakes.google.calls.predictLongRunning - calls.predictLongRunning, 1);
    await eventually(
      () => holdsOf(id),
      (holds) => holds.at(-1)?.state === 'settled',
      { what: "the re-driven attempt's hold settled" },
    );
    assert.deepEqual(await holdsOf(id), [
      { attempt: 1, state: 'released' },
      { attempt: 2, state: 'settled' },
    ]);
    assert.deepEqual(await redrivesOf(id), [
      { attempt: 2, via: 'retry-update', requested_by: 'ops' },
    ]);
  });

  it('re-drives a job sent in two re-drives at once once, skipping the other', async () => {
    const owner = h.user('wanda');
    const id = await failedAtTransfer(owner);
    await videoArrives(id);
    const outcomes = await Promise.all([redrive({ jobIds: [id] }), redrive({ jobIds: [id] })]);
    assert.equal(outcomes.flatMap(({ outcome }) => outcome.redriven).length, 1);
    const [skipped, ...more] = outcomes.flatMap(({ outcome }) => outcome.skipped);
    assert.equal(more.length, 0);
    assert.equal(skipped?.code, 'JOB_NOT_REDRIVABLE');
    const done = await owner.awaitJob<VlogView>('vlog', id, (view) => view.status === 'completed', {
      what: 're-driven vlog completed',
    });
    assert.equal(done.attempt, 2);
    assert.deepEqual(await redrivesOf(id), [
      { attempt: 2, via: 'retry-update', requested_by: 'operator' },
    ]);
  });

  it('gives back the hold of a re-drive Temporal did not answer, and forgets it, once the workflow closed without it', async () => {
    const id = await failedAtTransfer(h.user('victor'));
    await redriveUnanswered(id);
    await h.temporal.client.workflow.getHandle(id).terminate('its retry window ended');
    const reconciler = createJobReconcilerActivities({
      ...(await fakes.activityDependencies(h.db)),
      temporalClient: h.temporal.client,
    });
    const released = { count: 0 };
    await new MockActivityEnvironment().run(async () => {
      released.count = (
        await reconciler.releaseCostHoldsLeftOpen({ staleMs: 0, limit: 100 })
      ).released;
    });
    assert.ok(released.count >= 1, 'no hold released');
    assert.deepEqual(await holdsOf(id), [{ attempt: 1, state: 'released' }]);
    assert.deepEqual(await redrivesOf(id), []);
  });

  it('groups failures by the provider whose call ended them, as the activities report it', async () => {
    const owner = h.user('frank');
    const failed = async () => {
      const { id } = await owner.startJob('vlog', form());
      h.terminateOnStop(id);
      await owner.awaitJob<VlogView>('vlog', id, (view) => view.status === 'failed', {
        what: 'vlog failed',
      });
      return id;
    };
    fakes.google.scenario.analysisFailures = [{ status: 400 }];
    const analysis = await failed();
    fakes.google.scenario.generationOutcomes = [{ kind: 'error', message: 'renderer fell over' }];
    const generation = await failed();
    const response = await operator.get('/api/admin/failure-groups?kind=vlog');
    const groups = response.json<{ groups: { fingerprint: string; exampleJobIds: string[] }[] }>()
      .groups;
    const groupOf = (id: string) =>
      groups.find((group) => group.exampleJobIds.includes(id))?.fingerprint;
    assert.equal(groupOf(analysis), 'vlog:analyzing:PROVIDER_INVALID_ARGUMENT:gemini');
    assert.equal(groupOf(generation), 'vlog:generating:GENERATION_FAILED:veo');
  });

  it('re-drives a closed AI job in a new run of its own kind', async () => {
    const owner = closing.user('gina');
    fakes.google.scenario.analysisAnswers.push({ kind: 'blocked' });
    const { id } = await owner.startJob('ai');
    const failed = await owner.awaitJob<VlogView>('ai', id, (view) => view.status === 'failed', {
      what: 'AI job failed',
    });
    assert.equal(failed.error?.code, 'SAFETY_BLOCKED');
    await eventually(
      () => h.temporal.client.workflow.getHandle(id).describe(),
      (description) => description.status.name === 'FAILED',
      { what: 'the failed run closed' },
    );
    const groups = await operator.get('/api/admin/failure-groups?kind=ai');
    assert.ok(
      groups
        .json<{ groups: { fingerprint: string; exampleJobIds: string[] }[] }>()
        .groups.some(
          (group) =>
            group.fingerprint === 'ai:processing:SAFETY_BLOCKED:gemini' &&
            group.exampleJobIds.includes(id),
        ),
      groups.body,
    );
    const counted = await scrape();
    await redrive({ jobIds: [id, 'ai-no-such-job'], dryRun: true });
    const { outcome } = await redrive({ jobIds: [id, 'ai-no-such-job'] });
    assert.deepEqual(
      outcome.redriven.map(({ via, fromStage, attempt }) => ({ via, fromStage, attempt })),
      [{ via: 'new-run', fromStage: 'processing', attempt: 2 }],
    );
    // Counted once each, the dry run not at all: an operator's re-drives show in the metrics.
    const recounted = await scrape();
    const moved = (labels: Record<string, string>) =>
      recounted.value('vlogflow_redrive_jobs_total', labels) -
      counted.value('vlogflow_redrive_jobs_total', labels);
    assert.equal(moved({ kind: 'ai', result: 'redriven' }), 1);
    assert.equal(moved({ kind: 'unknown', result: 'NOT_FOUND' }), 1);
    assert.equal(moved({}), 2);
    const done = await owner.awaitJob<VlogView>('ai', id, (view) => view.status === 'completed', {
      what: 're-driven AI job completed',
    });
    assert.equal(done.attempt, 2);
  });

  it("admits a re-drive only within its owner's in-flight cap, as any start", async () => {
    const capped = await h.startApi({ env: { ...fakes.env, USER_MAX_JOBS_IN_FLIGHT: '1' } });
    const owner = capped.user('erin');
    const id = await failedAtTransfer(owner);
    await videoArrives(id);
    // Erin has another job in flight: the one place of her cap is taken.
    const blocking = jobRecord({ ownerId: 'erin' });
    await insertJob(h.db, blocking, 'pending');
    const row = await h.db.selectFrom('jobs').selectAll().where('id', '=', id).execute();
    for (const dryRun of [true, false]) {
      const response = await capped.admin('operator').post('/api/admin/redrives', {
        jobIds: [id],
        dryRun,
      });
      const outcome = response.json<RedriveOutcome>();
      assert.deepEqual(outcome.redriven, [], response.body);
      assert.equal(outcome.skipped[0]?.code, 'TOO_MANY_JOBS_IN_FLIGHT');
      assert.match(outcome.skipped[0]?.message ?? '', /the most allowed \(1\)/);
    }
    assert.deepEqual(await h.db.selectFrom('jobs').selectAll().where('id', '=', id).execute(), row);

    await applyJobUpdate(h.db, {
      jobId: blocking.id,
      seq: 1,
      snapshot: jobSnapshot({ status: 'completed', completedAt: new Date().toISOString() }),
    });
    const response = await capped.admin('operator').post('/api/admin/redrives', { jobIds: [id] });
    assert.equal(response.json<RedriveOutcome>().redriven[0]?.via, 'retry-update', response.body);
    // Counted at once: with the vlog re-driven, erin's cap is full again.
    const refused = await owner.post('/api/probes', { steps: 1, stepDelayMs: 0 });
    assert.equal(refused.statusCode, 429, refused.body);
    await owner.awaitJob<VlogView>('vlog', id, (view) => view.status === 'completed', {
      what: 're-driven vlog completed',
    });
  });

  it("skips a re-drive its owner's budget cannot hold, saying what remains, and holds the estimate of one it can", async () => {
    const owner = h.user('frank');
    const id = await failedAtTransfer(owner);
    await videoArrives(id);
    const job = await h.db
      .selectFrom('jobs')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    const estimate = parseMoney(job.estimated_cost!);
    assert.ok(estimate > 0n, 'a Veo vlog has a price');
    const holds = () => holdsOf(id);
    await eventually(holds, (rows) => rows[0]?.state === 'released', {
      what: 'the failed attempt released its hold',
    });
    async function budgetWithRoom(room: bigint) {
      const { spent } = await h.db
        .selectFrom('cost_ledger')
        .select((eb) => eb.fn.coalesce(eb.fn.sum<string>('cost'), eb.val('0')).as('spent'))
        .where('owner_id', '=', 'frank')
        .executeTakeFirstOrThrow();
      const set = await operator.request({
        method: 'PUT',
        url: '/api/admin/budgets/frank',
        payload: { daily: formatMoney(parseMoney(String(spent)) + room), monthly: null },
      });
      assert.equal(set.statusCode, 200, set.body);
    }

    await budgetWithRoom(estimate - 1n);
    for (const dryRun of [true, false]) {
      const { outcome } = await redrive({ jobIds: [id], dryRun });
      assert.deepEqual(outcome.redriven, []);
      assert.equal(outcome.skipped[0]?.code, 'BUDGET_EXCEEDED');
      assert.match(outcome.skipped[0]?.message ?? '', /of your daily budget of .* remains/);
    }
    assert.deepEqual(
      await h.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst(),
      job,
    );
    assert.deepEqual(await holds(), [{ attempt: 1, state: 'released' }]);

    await budgetWithRoom(estimate);
    const { outcome } = await redrive({ jobIds: [id] });
    assert.equal(outcome.redriven[0]?.attempt, 2, JSON.stringify(outcome));
    await owner.awaitJob<VlogView>('vlog', id, (view) => view.status === 'completed', {
      what: 're-driven vlog completed',
    });
    await eventually(holds, (rows) => rows[1]?.state === 'settled', {
      what: "the re-driven attempt's hold settled",
    });
    assert.deepEqual(await holds(), [
      { attempt: 1, state: 'released' },
      { attempt: 2, state: 'settled' },
    ]);
  });

  it('refuses CLI arguments naming the flag, with exit code 2', async () => {
    const group = 'vlog:transferring:TRANSFER_FAILED:-';
    for (const [args, message] of [
      [[], /^give either --group or --jobs, not both and not neither$/m],
      [['--group', group, '--jobs', 'a'], /^give either --group or --jobs/m],
      [['--group', 'vlog transfer'], /--group: must be a failure group fingerprint/],
      [['--group', group, '--limit', '0'], /--limit: /],
      [['--group', group, '--limit', '0x10'], /--limit: expected a whole number/],
      [['--jobs', 'a', '--limit', '5'], /^--limit: applies only with --group$/m],
      [
        ['--group', group, '--group', 'ai:processing:SAFETY_BLOCKED:gemini'],
        /^--group: given more than once$/m,
      ],
      [['--jobs', 'a', '--force'], /Unknown option '--force'/],
    ] as const) {
      const cli = await runRedriveCli([...args], cliEnv);
      assert.equal(cli.code, 2, `${args.join(' ')}: ${cli.stderr}`);
      assert.match(cli.stderr, message);
      assert.match(cli.stderr, /usage: npm run redrive/);
      assert.equal(cli.stdout, '');
    }
  });

  // Run from a newer checkout than the one deployed, it applied that checkout's migrations to
  // the service's database on the way.
  it("refuses a database whose schema is not this code's, naming what differs, and changes nothing", async () => {
    const empty = await createEmptyDatabase();
    const ahead = await createTestDatabase();
    try {
      await sql`insert into kysely_migration (name, timestamp) values ('9999_from_a_newer_version', '2027-01-01T00:00:00.000Z')`.execute(
        ahead.db,
      );
      const cases = [
        {
          url: empty.url,
          problem: /it lacks migrations 0001_create_jobs, .*: deploy this version first/,
        },
        {
          url: ahead.url,
          problem: /it has migrations 9999_from_a_newer_version of a newer version/,
        },
      ];
      for (const { url, problem } of cases) {
        const cli = await runRedriveCli(['--jobs', 'vlog-nope'], { ...cliEnv, DATABASE_URL: url });
        assert.equal(cli.code, 1, cli.stderr);
        assert.equal(cli.stdout, '');
        assert.match(
          cli.stderr,
          /^DATABASE_URL: cannot use the database at .*: its schema is not this code's: /m,
        );
        assert.match(cli.stderr, problem);
      }
      const emptyDb = new pg.Client({ connectionString: empty.url });
      await emptyDb.connect();
      try {
        const { rows } = await emptyDb.query(
          "select count(*)::int as tables from information_schema.tables where table_schema = 'public'",
        );
        assert.deepEqual(rows, [{ tables: 0 }], 'the empty database stays empty');
      } finally {
        await emptyDb.end();
      }
    } finally {
      await empty.drop();
      await ahead.drop();
    }
  });

  it('prints its usage on stdout for --help and exits 0', async () => {
    const cli = await runRedriveCli(['--help'], cliEnv);
    assert.match(cli.stdout, /^usage: npm run redrive -- /);
    assert.equal(cli.stderr, '');
    assert.equal(cli.code, 0);
  });

  // With Temporal out of reach, each job waited out JOB_CONTROL_TIMEOUT_MS in turn and was
  // skipped as a worker that did not answer: an operator learnt nothing, slowly.
  it('says Temporal is unavailable, trying one job, when it cannot be reached', async () => {
    const ids = [`vlog-${randomUUID()}`, `vlog-${randomUUID()}`].sort();
    for (const id of ids) {
      await insertJob(
        h.db,
        jobRecord({ id, kind: 'vlog', type: 'VLOG', ownerId: 'alice' }),
        'failed',
      );
    }
    const cli = await runRedriveCli(['--jobs', ids.join(',')], {
      ...cliEnv,
      TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
      JOB_CONTROL_TIMEOUT_MS: '2000',
    });
    assert.equal(cli.code, 1, cli.stderr);
    const outcome = JSON.parse(cli.stdout) as RedriveOutcome;
    assert.deepEqual(outcome.redriven, []);
    assert.deepEqual(
      outcome.skipped.map(({ jobId, code }) => [jobId, code]),
      ids.map((id) => [id, 'TEMPORAL_UNAVAILABLE']),
    );
    assert.match(
      outcome.skipped[0]!.message,
      /^Temporal is unavailable \(check TEMPORAL_ADDRESS\)/,
    );
    assert.match(outcome.skipped[1]!.message, /^Not tried: Temporal was unavailable/);
  });

  it('exits 1 when a job it was asked for is not re-driven, printing the outcome still', async () => {
    for (const dryRun of [[], ['--dry-run']]) {
      const cli = await runRedriveCli(['--jobs', 'vlog-nope', ...dryRun], cliEnv);
      assert.equal(cli.code, 1, cli.stderr);
      assert.deepEqual(JSON.parse(cli.stdout), {
        dryRun: dryRun.length > 0,
        redriven: [],
        skipped: [{ jobId: 'vlog-nope', code: 'NOT_FOUND', message: 'No job with id vlog-nope' }],
      });
    }
  });
});
