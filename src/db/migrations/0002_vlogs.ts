import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // What an Idempotency-Key was first used for: the same key with another request is a 422.
  await db.schema.alterTable('jobs').addColumn('request_fingerprint', 'text').execute();

  // Paid provider calls, recorded the moment the provider accepts them, so a retried activity
  // or a crashed worker re-attaches instead of paying again.
  await db.schema
    .createTable('provider_operations')
    .addColumn('idempotency_key', sql`text collate "C"`, (col) => col.primaryKey())
    .addColumn('job_id', 'text', (col) => col.notNull())
    .addColumn('operation_name', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('provider_operations_job_idx')
    .on('provider_operations')
    .column('job_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('provider_operations').execute();
  await db.schema.alterTable('jobs').dropColumn('request_fingerprint').execute();
}
