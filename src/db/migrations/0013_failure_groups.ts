import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // What an operator groups failures by, beside the kind and the error code: the stage the job
  // was in when it failed and the provider whose call ended it (null: none did).
  await db.schema
    .alterTable('jobs')
    .addColumn('failed_stage', 'text')
    .addColumn('failed_provider', 'text')
    .execute();
  // Jobs that ended before take their stage from their log: the last state before the failure.
  // Their provider is unknown.
  await sql`
    update jobs set failed_stage = (
      select status from job_events
      where job_events.job_id = jobs.id and job_events.part = 0
        and job_events.status not in ('completed', 'failed', 'cancelled', 'timeout')
      order by seq desc limit 1
    )
    where status in ('failed', 'timeout')
  `.execute(db);
  // Failure groups read only the failed and timed-out jobs, by when they ended.
  await sql`
    create index jobs_failures_idx on jobs (completed_at)
    where status in ('failed', 'timeout')
  `.execute(db);
  // Every re-drive of a job: which attempt it started, from which run, how and by whom.
  await db.schema
    .createTable('job_redrives')
    .addColumn('job_id', 'text', (col) => col.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('attempt', 'integer', (col) => col.notNull())
    .addColumn('previous_run_id', 'text')
    .addColumn('via', 'text', (col) => col.notNull().check(sql`via in ('retry-update', 'new-run')`))
    .addColumn('from_stage', 'text')
    .addColumn('requested_by', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('job_redrives_pk', ['job_id', 'attempt'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('job_redrives').execute();
  await sql`drop index jobs_failures_idx`.execute(db);
  await db.schema
    .alterTable('jobs')
    .dropColumn('failed_stage')
    .dropColumn('failed_provider')
    .execute();
}
