import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { mintToken } from '../../src/auth.js';
import { applyJobUpdate, insertJob } from '../../src/db/jobs.js';
import type { JobRecord } from '../../src/jobs/contracts.js';
import type { JobError, JobStatus } from '../../src/jobs/model.js';
import { startHarness, testJwtSecret, type Harness, type UserClient } from '../support/harness.js';
import { jobRecord, jobSnapshot, vlogInput } from '../support/jobs.js';

interface ErrorBody {
  error: { code: string; message: string };
}

interface FailureGroup {
  fingerprint: string;
  kind: string;
  stage: string | null;
  code: string;
  provider: string | null;
  count: number;
  firstSeenAt: string;
  lastSeenAt: string;
  exampleJobIds: string[];
}

interface RedriveOutcome {
  dryRun: boolean;
  redriven: unknown[];
  skipped: { jobId: string; code: string; message: string }[];
}

// Failure groups and re-drive requests over a real database, with jobs written as the workflows'
// projection writes them (no worker runs here: what re-drives do to workflows is
// test/e2e/redrive.test.ts).
describe('failure groups (admin)', () => {
  let h: Harness;
  let operator: UserClient;
  const alice = `alice-${randomUUID().slice(0, 8)}`;
  const bob = `bob-${randomUUID().slice(0, 8)}`;

  const vlog = (ownerId: string) =>
    jobRecord({
      id: `vlog-${randomUUID()}`,
      kind: 'vlog',
      type: 'VLOG',
      ownerId,
      input: vlogInput({ title: 'T' }),
    });
  const ai = (ownerId: string) =>
    jobRecord({
      id: `ai-${randomUUID()}`,
      kind: 'ai',
      type: 'SUBGOAL_GENERATION',
      ownerId,
      input: { goal: 'g', maxItems: 3, language: 'en' },
    });

  /** A job that ran into `stage` and ended `status` at `endedAt`, projected as a workflow does. */
  async function ended(
    job: JobRecord,
    stage: JobStatus,
    status: JobStatus,
    endedAt: string,
    error: JobError | null,
  ): Promise<string> {
    await insertJob(h.db, job, 'pending');
    await applyJobUpdate(h.db, { jobId: job.id, seq: 1, snapshot: jobSnapshot({ status: stage }) });
    await applyJobUpdate(h.db, {
      jobId: job.id,
      seq: 2,
      snapshot: jobSnapshot({ status, completedAt: endedAt, error }),
    });
    return job.id;
  }

  const transferFailed = { code: 'TRANSFER_FAILED', message: 'source missing' };
  let transfers: [string, string];
  let generation: string;
  let timeout: string;
  let probe: string;

  before(async () => {
    h = await startHarness();
    operator = h.admin(`operator-${randomUUID().slice(0, 8)}`);
    transfers = [
      await ended(
        vlog(alice),
        'transferring',
        'failed',
        '2026-01-01T10:00:00.000Z',
        transferFailed,
      ),
      await ended(vlog(bob), 'transferring', 'failed', '2026-01-02T10:00:00.000Z', transferFailed),
    ];
    generation = await ended(vlog(alice), 'generating', 'failed', '2026-01-03T10:00:00.000Z', {
      code: 'GENERATION_FAILED',
      message: 'no',
      provider: 'veo',
    });
    timeout = await ended(ai(bob), 'processing', 'timeout', '2026-01-04T10:00:00.000Z', {
      code: 'JOB_TIMEOUT',
      message: 'too slow',
    });
    probe = await ended(
      jobRecord({ ownerId: alice }),
      'running',
      'failed',
      '2026-01-05T10:00:00.000Z',
      {
        code: 'JOB_FAILED',
        message: 'probe failed',
      },
    );
    // Neither a completed nor a cancelled job is a failure.
    await ended(vlog(alice), 'transferring', 'completed', '2026-01-06T10:00:00.000Z', null);
    await ended(vlog(bob), 'generating', 'cancelled', '2026-01-06T10:00:00.000Z', {
      code: 'CANCELLED',
      message: 'by the owner',
    });
  });
  after(() => h.stop());

  async function groups(query = '') {
    const response = await operator.get(`/api/admin/failure-groups${query}`);
    assert.equal(response.statusCode, 200, response.body);
    return response.json<{ groups: FailureGroup[] }>().groups;
  }

  it("groups every user's failed and timed-out jobs by kind, stage, code and provider", async () => {
    assert.deepEqual(await groups(), [
      {
        fingerprint: 'vlog:transferring:TRANSFER_FAILED:-',
        kind: 'vlog',
        stage: 'transferring',
        code: 'TRANSFER_FAILED',
        provider: null,
        count: 2,
        firstSeenAt: '2026-01-01T10:00:00.000Z',
        lastSeenAt: '2026-01-02T10:00:00.000Z',
        exampleJobIds: [transfers[1], transfers[0]],
      },
      {
        fingerprint: 'probe:running:JOB_FAILED:-',
        kind: 'probe',
        stage: 'running',
        code: 'JOB_FAILED',
        provider: null,
        count: 1,
        firstSeenAt: '2026-01-05T10:00:00.000Z',
        lastSeenAt: '2026-01-05T10:00:00.000Z',
        exampleJobIds: [probe],
      },
      {
        fingerprint: 'ai:processing:JOB_TIMEOUT:-',
        kind: 'ai',
        stage: 'processing',
        code: 'JOB_TIMEOUT',
        provider: null,
        count: 1,
        firstSeenAt: '2026-01-04T10:00:00.000Z',
        lastSeenAt: '2026-01-04T10:00:00.000Z',
        exampleJobIds: [timeout],
      },
      {
        fingerprint: 'vlog:generating:GENERATION_FAILED:veo',
        kind: 'vlog',
        stage: 'generating',
        code: 'GENERATION_FAILED',
        provider: 'veo',
        count: 1,
        firstSeenAt: '2026-01-03T10:00:00.000Z',
        lastSeenAt: '2026-01-03T10:00:00.000Z',
        exampleJobIds: [generation],
      },
    ]);
  });

  it('filters by kind, code and the time the jobs failed', async () => {
    const fingerprints = (list: FailureGroup[]) => list.map((group) => group.fingerprint);
    assert.deepEqual(fingerprints(await groups('?kind=vlog')), [
      'vlog:transferring:TRANSFER_FAILED:-',
      'vlog:generating:GENERATION_FAILED:veo',
    ]);
    assert.deepEqual(fingerprints(await groups('?code=JOB_TIMEOUT')), [
      'ai:processing:JOB_TIMEOUT:-',
    ]);
    const window = await groups('?from=2026-01-02T00:00:00Z&to=2026-01-03T12:00:00Z');
    assert.deepEqual(
      window.map((group) => [group.fingerprint, group.count, group.exampleJobIds]),
      [
        ['vlog:generating:GENERATION_FAILED:veo', 1, [generation]],
        ['vlog:transferring:TRANSFER_FAILED:-', 1, [transfers[1]]],
      ],
    );
    assert.deepEqual(await groups('?kind=vlog&code=JOB_TIMEOUT'), []);
    assert.equal((await groups('?limit=1')).length, 1);
  });

  it('refuses bad filters with VALIDATION_FAILED naming the field', async () => {
    for (const [query, message] of [
      ['?from=yesterday', /^querystring\.from: /],
      [
        '?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z',
        /^querystring\.to: must be later than from/,
      ],
      ['?code=transfer failed', /^querystring\.code: must be an error code/],
      ['?limit=0', /^querystring\.limit: /],
      ['?limit=0x10', /^querystring\.limit: expected a whole number in decimal digits/],
      ['?owner=alice', /^querystring\.owner: unknown field/],
    ] as const) {
      const response = await operator.get(`/api/admin/failure-groups${query}`);
      assert.equal(response.statusCode, 400, `${query}: ${response.body}`);
      const { error } = response.json<ErrorBody>();
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.match(error.message, message, query);
    }
  });

  it('answers 403 ADMIN_REQUIRED to a token without the admin claim, on every admin route', async () => {
    const user = h.user(alice);
    for (const response of [
      await user.get('/api/admin/failure-groups'),
      await user.post('/api/admin/redrives', { jobIds: [transfers[0]], dryRun: true }),
    ]) {
      assert.equal(response.statusCode, 403, response.body);
      const { error } = response.json<ErrorBody>();
      assert.equal(error.code, 'ADMIN_REQUIRED');
      assert.match(error.message, /admin claim/);
    }
    // The same token is no admin's where the admin claim must hold another value.
    const other = await h.startApi({ env: { AUTH_ADMIN_CLAIM_VALUE: 'someone-else' } });
    const response = await other.app.inject({
      method: 'GET',
      url: '/api/admin/failure-groups',
      headers: { authorization: await operator.authorization() },
    });
    assert.equal(response.statusCode, 403, response.body);
  });

  it('takes the admin claim from configuration: any claim name, a scope list', async () => {
    const api = await h.startApi({
      env: { AUTH_ADMIN_CLAIM: 'scope', AUTH_ADMIN_CLAIM_VALUE: 'jobs:operate' },
    });
    const scoped = api.app;
    for (const [scope, status] of [
      ['read jobs:operate', 200],
      ['read jobs:operator', 403],
    ] as const) {
      const token = await mintToken(testJwtSecret, 'op', { claims: { scope } });
      const response = await scoped.inject({
        method: 'GET',
        url: '/api/admin/failure-groups',
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(response.statusCode, status, `${scope}: ${response.body}`);
    }
  });

  it('leaves every other route scoped to the caller: an operator sees only its own jobs', async () => {
    const mine = await operator.get('/api/jobs');
    assert.equal(mine.statusCode, 200);
    assert.deepEqual(mine.json<{ jobs: unknown[] }>().jobs, []);
    for (const url of [`/api/jobs/${transfers[0]}`, `/api/vlogs/${transfers[0]}`]) {
      const response = await operator.get(url);
      assert.equal(response.statusCode, 404, url);
    }
    const retry = await operator.post(`/api/vlogs/${transfers[0]}/retry`);
    assert.equal(retry.statusCode, 404);
    // The owners still see theirs.
    const aliceJobs = (await h.user(alice).get('/api/jobs')).json<{ jobs: { id: string }[] }>();
    assert.ok(aliceJobs.jobs.some((job) => job.id === transfers[0]));
    assert.ok(!aliceJobs.jobs.some((job) => job.id === transfers[1]));
  });

  it('refuses a re-drive request that names neither or both, or a bad group, naming the field', async () => {
    for (const [body, message] of [
      [{}, /^body\.group: give either group or jobIds/],
      [
        { group: 'vlog:transferring:TRANSFER_FAILED:-', jobIds: ['x'] },
        /^body\.group: give either/,
      ],
      // Told once, not also that its first word is no kind.
      [{ group: 'vlog transfer' }, /^body\.group: must be a failure group fingerprint[^;]*$/],
      // A group of a kind that does not exist would re-drive nothing, answered as if it had.
      [{ group: 'nokind:x:Y:-', dryRun: true }, /^body\.group: must begin with a kind that exists/],
      [{ jobIds: [] }, /^body\.jobIds: /],
      [{ jobIds: Array.from({ length: 101 }, (_, i) => `j${i}`) }, /^body\.jobIds: /],
      [{ jobIds: ['x'], dryRun: 'yes' }, /^body\.dryRun: /],
      // A JSON number, not text that Number() would turn into one.
      ...['5', true, [5]].map(
        (limit) =>
          [
            { group: 'vlog:transferring:TRANSFER_FAILED:-', limit },
            /^body\.limit: expected a whole number/,
          ] as const,
      ),
      // Out of range is told its bound, not that it is no whole number.
      [
        { group: 'vlog:transferring:TRANSFER_FAILED:-', limit: 0 },
        /^body\.limit: Too small: expected number to be >=1$/,
      ],
      [
        { group: 'vlog:transferring:TRANSFER_FAILED:-', limit: 101 },
        /^body\.limit: Too big: expected number to be <=100$/,
      ],
      [
        { group: 'vlog:transferring:TRANSFER_FAILED:-', limit: 1.5 },
        /^body\.limit: expected a whole number$/,
      ],
      // Listed jobs are all re-driven: a limit there would be silently ignored.
      [{ jobIds: ['x'], limit: 1 }, /^body\.limit: applies only with group/],
      [{ jobIds: ['x'], force: true }, /^body\.force: unknown field/],
    ] as const) {
      const response = await operator.post('/api/admin/redrives', body);
      assert.equal(response.statusCode, 400, `${JSON.stringify(body)}: ${response.body}`);
      const { error } = response.json<ErrorBody>();
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.match(error.message, message, JSON.stringify(body));
    }
  });

  it('says why each job it cannot re-drive is left, and changes nothing in a dry run', async () => {
    await h.db
      .updateTable('jobs')
      .set({ media_deleted_at: '2026-02-01T00:00:00Z' })
      .where('id', '=', transfers[1])
      .execute();
    const before = await h.db.selectFrom('jobs').selectAll().orderBy('id').execute();
    const missing = `vlog-${randomUUID()}`;
    const completed = before.find((row) => row.status === 'completed')!.id;
    const response = await operator.post('/api/admin/redrives', {
      jobIds: [transfers[0], transfers[1], probe, completed, missing],
      dryRun: true,
    });
    assert.equal(response.statusCode, 200, response.body);
    const outcome = response.json<RedriveOutcome>();
    assert.equal(outcome.dryRun, true);
    assert.deepEqual(outcome.redriven, []);
    const reasons = new Map(outcome.skipped.map((skip) => [skip.jobId, skip]));
    assert.equal(reasons.get(missing)?.code, 'NOT_FOUND');
    assert.equal(reasons.get(probe)?.code, 'JOB_NOT_REDRIVABLE');
    assert.match(reasons.get(probe)!.message, /A probe has no retries/);
    assert.equal(reasons.get(completed)?.code, 'JOB_NOT_REDRIVABLE');
    assert.match(reasons.get(completed)!.message, /this one is completed/);
    // Written without a workflow: as if Temporal's retention had dropped it.
    assert.equal(reasons.get(transfers[0])?.code, 'JOB_NOT_REDRIVABLE');
    assert.match(reasons.get(transfers[0])!.message, /no longer keeps the job's workflow/);
    assert.match(
      reasons.get(transfers[1])!.message,
      /media was deleted by the retention sweep at 2026-02-01T00:00:00.000Z/,
    );
    assert.deepEqual(await h.db.selectFrom('jobs').selectAll().orderBy('id').execute(), before);
    assert.deepEqual(await h.db.selectFrom('job_redrives').selectAll().execute(), []);
  });
});
