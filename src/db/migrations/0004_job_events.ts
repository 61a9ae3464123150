import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // Every state a job's row went through, in order: what progress streams replay and resume
  // from. The key is the projection's sequence number, which only grows, across retries too.
  await db.schema
    .createTable('job_events')
    .addColumn('job_id', 'text', (col) => col.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (col) => col.notNull())
    .addColumn('type', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('progress', 'integer', (col) => col.notNull())
    .addColumn('phase', 'text')
    .addColumn('attempt', 'integer', (col) => col.notNull())
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('job_events_pk', ['job_id', 'seq'])
    .execute();
  // Jobs that existed before the log start it with their current state.
  await sql`
    insert into job_events
      (job_id, seq, type, status, progress, phase, attempt, error_code, error_message, created_at)
    select id, projection_seq, 'status', status, progress, phase, attempt, error_code,
      error_message, updated_at
    from jobs
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('job_events').execute();
}
