import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // When the job entered its current status: the projection measures how long a stage took
  // from it (vlogflow_job_stage_duration_seconds) without reading the event log back.
  await db.schema.alterTable('jobs').addColumn('status_changed_at', 'timestamptz').execute();
  // Jobs in flight take it from their log; an ended job's next change (a retry) starts a stage,
  // which needs no start time.
  await sql`
    update jobs set status_changed_at = (
      select max(created_at) from job_events
      where job_events.job_id = jobs.id and job_events.type = 'status'
    )
    where status not in ('completed', 'failed', 'cancelled', 'timeout')
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').dropColumn('status_changed_at').execute();
}
