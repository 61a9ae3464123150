import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A model's finished answer, kept from the moment it was charged until its job attempt ends,
  // under the call's identity within the attempt (not the activity's attempt): an activity
  // retried after the answer (its report lost with the worker or with Temporal) reads it here
  // instead of asking, and paying, again. With the charge's own key and usage, so a charge the
  // lost attempt did not write is written once by the retry. `attempt` is the job's.
  await db.schema
    .createTable('model_answers')
    .addColumn('call_key', sql`text collate "C"`, (col) => col.primaryKey())
    .addColumn('job_id', 'text', (col) => col.notNull())
    .addColumn('attempt', 'integer', (col) => col.notNull())
    .addColumn('ledger_key', 'text', (col) => col.notNull())
    .addColumn('provider', 'text', (col) => col.notNull())
    .addColumn('model', 'text', (col) => col.notNull())
    .addColumn('input_tokens', 'bigint', (col) => col.notNull())
    .addColumn('output_tokens', 'bigint', (col) => col.notNull())
    .addColumn('answer', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('model_answers_job_idx')
    .on('model_answers')
    .columns(['job_id', 'attempt'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('model_answers').execute();
}
