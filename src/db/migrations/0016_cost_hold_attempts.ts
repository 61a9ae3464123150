import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A retried or re-driven job holds its estimate again for its new attempt, so a job has one
  // hold an attempt. A hold made before this was its job's attempt then, which the job still
  // runs unless a retry (which held nothing) followed it.
  await db.schema
    .alterTable('cost_holds')
    .addColumn('attempt', 'integer', (col) => col.notNull().defaultTo(1))
    .execute();
  await sql`
    update cost_holds h set attempt = j.attempt from jobs j
    where j.id = h.job_id and h.state = 'held'`.execute(db);
  await db.schema.alterTable('cost_holds').dropConstraint('cost_holds_pkey').execute();
  await db.schema
    .alterTable('cost_holds')
    .addPrimaryKeyConstraint('cost_holds_pkey', ['job_id', 'attempt'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    delete from cost_holds h where exists (select 1 from cost_holds later
      where later.job_id = h.job_id and later.attempt > h.attempt)`.execute(db);
  await db.schema.alterTable('cost_holds').dropConstraint('cost_holds_pkey').execute();
  await db.schema
    .alterTable('cost_holds')
    .addPrimaryKeyConstraint('cost_holds_pkey', ['job_id'])
    .execute();
  await db.schema.alterTable('cost_holds').dropColumn('attempt').execute();
}
