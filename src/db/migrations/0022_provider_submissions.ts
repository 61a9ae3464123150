import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A paid submission sent and not yet answered, under the key its operation is recorded with:
  // written just before the request goes out, forgotten once the provider answers. One still
  // here when the submission is tried again was never answered (its worker killed, its request
  // timed out): the provider may have taken it, so the retry looks for what it wrote before it
  // pays for another.
  await db.schema
    .createTable('provider_submissions')
    .addColumn('idempotency_key', sql`text collate "C"`, (col) => col.primaryKey())
    .addColumn('job_id', 'text', (col) => col.notNull())
    .addColumn('sent_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('provider_submissions_job_idx')
    .on('provider_submissions')
    .column('job_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('provider_submissions').execute();
}
