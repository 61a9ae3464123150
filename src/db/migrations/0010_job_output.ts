import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A model's answer as it streams, in pieces, in the job's event log between its states: each
  // piece is numbered after the last state, (seq, part), so a reader's place is still one pair
  // and states keep their own numbers (part 0).
  await db.schema
    .alterTable('job_events')
    .addColumn('part', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('output_text', 'text')
    .addColumn('output_offset', 'integer')
    .execute();
  await sql`
    alter table job_events
      drop constraint job_events_pk,
      add constraint job_events_pk primary key (job_id, seq, part)
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`delete from job_events where part > 0`.execute(db);
  await sql`
    alter table job_events
      drop constraint job_events_pk,
      add constraint job_events_pk primary key (job_id, seq)
  `.execute(db);
  await db.schema
    .alterTable('job_events')
    .dropColumn('part')
    .dropColumn('output_text')
    .dropColumn('output_offset')
    .execute();
}
