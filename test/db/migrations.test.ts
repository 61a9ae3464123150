import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { openDatabase, type Db } from '../../src/db/database.js';
import type { Database } from '../../src/db/schema.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import * as createJobs from '../../src/db/migrations/0001_create_jobs.js';
import * as vlogs from '../../src/db/migrations/0002_vlogs.js';
import * as userLimits from '../../src/db/migrations/0003_user_limits.js';
import * as statusChangedAt from '../../src/db/migrations/0011_status_changed_at.js';
import * as failureGroups from '../../src/db/migrations/0013_failure_groups.js';
import { readJobEvents } from '../../src/db/job-events.js';
import { applyJobUpdate, findOwnedJob, insertJob } from '../../src/db/jobs.js';
import { jobStatuses, type JobStatus } from '../../src/jobs/model.js';
import { createEmptyDatabase, createTestDatabase } from '../support/database.js';
import { jobSnapshot } from '../support/jobs.js';

async function schemaOf(db: Db) {
  const columns = await sql<{ column_name: string }>`
    select column_name from information_schema.columns where table_name = 'jobs' order by column_name
  `.execute(db);
  const indexes = await sql<{ indexname: string }>`
    select indexname from pg_indexes where tablename = 'jobs' order by indexname
  `.execute(db);
  const checks = await sql<{ conname: string }>`
    select conname from pg_constraint
    where contype = 'c' and conrelid in ('jobs'::regclass, 'job_events'::regclass)
    order by conname
  `.execute(db);
  return {
    columns: columns.rows.map((row) => row.column_name),
    indexes: indexes.rows.map((row) => row.indexname),
    checks: checks.rows.map((row) => row.conname),
  };
}

const job = {
  id: 'probe-1',
  kind: 'probe' as const,
  type: 'PROBE',
  ownerId: 'alice',
  input: { steps: 1 },
  idempotencyKey: null,
  requestFingerprint: null,
  createdAt: '2026-01-01T00:00:00.000Z',
};

describe('migrations', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('apply the same schema on PostgreSQL and on embedded PGlite', async () => {
    const empty = await createEmptyDatabase();
    cleanups.push(empty.drop);
    const postgres = await openDatabase({ databaseUrl: empty.url, dataDir: '.' });
    cleanups.push(() => postgres.destroy());

    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-pglite-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const pglite = await openDatabase({ dataDir });
    cleanups.push(() => pglite.destroy());

    const expected = await schemaOf(postgres);
    assert.ok(expected.columns.includes('projection_seq'));
    assert.ok(expected.columns.includes('idempotency_key'));
    assert.deepEqual(expected.indexes, [
      'jobs_concurrency_line_idx',
      'jobs_failures_idx',
      'jobs_media_kept_idx',
      'jobs_owner_created_idx',
      'jobs_owner_idempotency_key_idx',
      'jobs_owner_in_flight_idx',
      'jobs_owner_status_created_idx',
      'jobs_owner_type_created_idx',
      'jobs_pkey',
      'jobs_type_completed_idx',
      'jobs_workflow_id_key',
    ]);
    assert.deepEqual(expected.checks, [
      'job_events_status_check',
      'jobs_progress_check',
      'jobs_status_check',
    ]);
    assert.deepEqual(await schemaOf(pglite), expected);
  });

  it('are idempotent and keep data when the embedded database is reopened', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-pglite-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const first = await openDatabase({ dataDir });
    await insertJob(first, job, 'pending');
    assert.deepEqual(await migrateToLatest(first), []);
    await first.destroy();

    const reopened = await openDatabase({ dataDir });
    cleanups.push(() => reopened.destroy());
    const rows = await reopened.selectFrom('jobs').select(['id', 'status', 'input']).execute();
    assert.deepEqual(rows, [{ id: 'probe-1', status: 'pending', input: { steps: 1 } }]);
  });

  it('run safely from two processes at once on PostgreSQL', async () => {
    const empty = await createEmptyDatabase();
    cleanups.push(empty.drop);
    const [a, b] = await Promise.all([
      openDatabase({ databaseUrl: empty.url, dataDir: '.' }),
      openDatabase({ databaseUrl: empty.url, dataDir: '.' }),
    ]);
    cleanups.push(
      () => a.destroy(),
      () => b.destroy(),
    );
    const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(a);
    assert.deepEqual(
      applied.rows.map((row) => row.name),
      [
        '0001_create_jobs',
        '0002_vlogs',
        '0003_user_limits',
        '0004_job_events',
        '0005_media_retention',
        '0006_job_statuses',
        '0007_job_reservations',
        '0008_concurrency_keys',
        '0009_provider_quota',
        '0010_job_output',
        '0011_status_changed_at',
        '0012_projection_seq_offset',
        '0013_failure_groups',
        '0014_projection_history_length',
        '0015_costs',
        '0016_cost_hold_attempts',
        '0017_provider_operation_outcomes',
        '0018_provider_request_pacing',
        '0019_provider_lease_turns',
        '0020_provider_lease_rechecks',
        '0021_model_answers',
        '0022_provider_submissions',
        '0023_provider_submission_providers',
        '0024_upload_batches',
      ],
    );
  });

  it('start the event log of jobs that existed before it with their current state', async () => {
    const empty = await createEmptyDatabase();
    cleanups.push(empty.drop);
    const pool = new pg.Pool({ connectionString: empty.url });
    // pg-pool's end() resolves before its idle connections have closed, so the drop that follows
    // (with force) may terminate one: an error of a pool nothing uses any more, not the test's.
    pool.on('error', () => undefined);
    const db: Db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    cleanups.push(() => db.destroy());
    const before = {
      '0001_create_jobs': createJobs,
      '0002_vlogs': vlogs,
      '0003_user_limits': userLimits,
    };
    await new Migrator({ db, provider: { getMigrations: async () => before } }).migrateToLatest();
    await sql`
      insert into jobs (id, kind, type, owner_id, status, progress, input, workflow_id, attempt,
        projection_seq, error_code, error_message, created_at, updated_at)
      values ('vlog-old', 'vlog', 'VLOG', 'alice', 'failed', 40, '{}', 'vlog-old', 2, 7,
        'BOOM', 'it broke', now(), now())
    `.execute(db);

    assert.deepEqual(await migrateToLatest(db), [
      '0004_job_events',
      '0005_media_retention',
      '0006_job_statuses',
      '0007_job_reservations',
      '0008_concurrency_keys',
      '0009_provider_quota',
      '0010_job_output',
      '0011_status_changed_at',
      '0012_projection_seq_offset',
      '0013_failure_groups',
      '0014_projection_history_length',
      '0015_costs',
      '0016_cost_hold_attempts',
      '0017_provider_operation_outcomes',
      '0018_provider_request_pacing',
      '0019_provider_lease_turns',
      '0020_provider_lease_rechecks',
      '0021_model_answers',
      '0022_provider_submissions',
      '0023_provider_submission_providers',
      '0024_upload_batches',
    ]);
    const log = await readJobEvents(db, [{ jobId: 'vlog-old', afterSeq: -1 }], 10);
    assert.deepEqual(
      log.map(({ event }) => [event.seq, event.status, event.progress, event.attempt, event.error]),
      [[7, 'failed', 40, 2, { code: 'BOOM', message: 'it broke' }]],
    );
  });

  it('give the jobs in flight before it the time they entered their status, from their log', async () => {
    const test = await createTestDatabase();
    cleanups.push(() => test.drop());
    await statusChangedAt.down(test.db as Kysely<unknown>);
    await sql`
      insert into jobs (id, kind, type, owner_id, status, input, workflow_id, created_at, updated_at)
      values
        ('vlog-running', 'vlog', 'VLOG', 'alice', 'generating', '{}', 'vlog-running', now(), now()),
        ('vlog-ended', 'vlog', 'VLOG', 'alice', 'completed', '{}', 'vlog-ended', now(), now())
    `.execute(test.db);
    await sql`
      insert into job_events (job_id, seq, type, status, progress, attempt, created_at)
      values
        ('vlog-running', 0, 'status', 'pending', 0, 1, '2026-01-01T00:00:00Z'),
        ('vlog-running', 1, 'status', 'generating', 25, 1, '2026-01-01T00:01:00Z'),
        ('vlog-running', 2, 'progress', 'generating', 50, 1, '2026-01-01T00:02:00Z'),
        ('vlog-ended', 0, 'status', 'completed', 100, 1, '2026-01-01T00:00:00Z')
    `.execute(test.db);
    await statusChangedAt.up(test.db as Kysely<unknown>);
    const rows = await test.db
      .selectFrom('jobs')
      .select(['id', 'status_changed_at'])
      .orderBy('id')
      .execute();
    assert.deepEqual(
      rows.map((row) => [row.id, row.status_changed_at?.toISOString() ?? null]),
      [
        ['vlog-ended', null],
        ['vlog-running', '2026-01-01T00:01:00.000Z'],
      ],
    );
  });

  it('let a worker of the version before note a Veo submission, without its provider, during a rolling deploy', async () => {
    const test = await createTestDatabase();
    cleanups.push(() => test.drop());
    // As recordSubmissionSent wrote it before migration 0023.
    await sql`
      insert into provider_submissions (idempotency_key, job_id)
      values ('vlog-old:attempt-1:generate', 'vlog-old')
    `.execute(test.db);
    const notes = await test.db
      .selectFrom('provider_submissions')
      .select(['job_id', 'provider'])
      .execute();
    assert.deepEqual(notes, [{ job_id: 'vlog-old', provider: 'veo' }]);
  });

  it('give the jobs that failed before it the stage they failed in, from their log', async () => {
    const test = await createTestDatabase();
    cleanups.push(() => test.drop());
    await failureGroups.down(test.db as Kysely<unknown>);
    await sql`
      insert into jobs (id, kind, type, owner_id, status, input, workflow_id, created_at, updated_at)
      values
        ('vlog-failed', 'vlog', 'VLOG', 'alice', 'failed', '{}', 'vlog-failed', now(), now()),
        ('vlog-running', 'vlog', 'VLOG', 'alice', 'generating', '{}', 'vlog-running', now(), now())
    `.execute(test.db);
    await sql`
      insert into job_events (job_id, seq, type, status, progress, attempt)
      values
        ('vlog-failed', 0, 'status', 'pending', 0, 1),
        ('vlog-failed', 1, 'status', 'analyzing', 0, 1),
        ('vlog-failed', 2, 'status', 'transferring', 75, 1),
        ('vlog-failed', 3, 'status', 'failed', 75, 1),
        ('vlog-running', 0, 'status', 'generating', 25, 1)
    `.execute(test.db);
    await failureGroups.up(test.db as Kysely<unknown>);
    const rows = await test.db
      .selectFrom('jobs')
      .select(['id', 'failed_stage', 'failed_provider'])
      .orderBy('id')
      .execute();
    assert.deepEqual(rows, [
      { id: 'vlog-failed', failed_stage: 'transferring', failed_provider: null },
      { id: 'vlog-running', failed_stage: null, failed_provider: null },
    ]);
  });

  it('refuse a job status outside the set, in the jobs table and in its event log', async () => {
    const test = await createTestDatabase();
    cleanups.push(() => test.drop());
    for (const status of jobStatuses) {
      await insertJob(test.db, { ...job, id: `probe-${status}` }, status);
    }
    const stored = await test.db.selectFrom('jobs').select('status').orderBy('id').execute();
    assert.deepEqual(stored.map((row) => row.status).sort(), [...jobStatuses].sort());

    const unknown = 'archived' as JobStatus;
    // The row and its first event are one statement: whichever check fires, neither is kept.
    await assert.rejects(insertJob(test.db, { ...job, id: 'probe-archived' }, unknown), {
      code: '23514',
      constraint: /^(jobs|job_events)_status_check$/,
    });
    assert.equal(await findOwnedJob(test.db, job.ownerId, 'probe-archived'), undefined);
    await assert.rejects(
      applyJobUpdate(test.db, {
        jobId: 'probe-pending',
        seq: 1,
        snapshot: jobSnapshot({ status: unknown }),
      }),
      { code: '23514', constraint: 'jobs_status_check' },
    );
    await assert.rejects(
      sql`
        insert into job_events (job_id, seq, type, status, progress, attempt)
        values ('probe-pending', 5, 'status', ${unknown}, 0, 1)
      `.execute(test.db),
      { code: '23514', constraint: 'job_events_status_check' },
    );
    const row = await findOwnedJob(test.db, job.ownerId, 'probe-pending');
    assert.equal(row?.status, 'pending');
    assert.equal(row?.projection_seq, 0);
    const log = await readJobEvents(test.db, [{ jobId: 'probe-pending', afterSeq: -1 }], 10);
    assert.deepEqual(
      log.map(({ event }) => [event.seq, event.status]),
      [[0, 'pending']],
    );
  });
});
