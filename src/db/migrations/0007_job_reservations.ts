import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A job the API has admitted (counted against its owner's in-flight cap, its Idempotency-Key
  // taken) whose workflow it is starting and whose row it has not written yet. It expires, so
  // an API that dies before writing the row frees the place by itself.
  await db.schema
    .createTable('job_reservations')
    .addColumn('job_id', sql`text collate "C"`, (col) => col.primaryKey())
    .addColumn('owner_id', 'text', (col) => col.notNull())
    .addColumn('idempotency_key', 'text')
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .execute();
  await db.schema
    .createIndex('job_reservations_owner_idx')
    .on('job_reservations')
    .column('owner_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('job_reservations').execute();
}
