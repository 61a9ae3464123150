import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // Request counts per user and fixed window, shared by every API process.
  await db.schema
    .createTable('rate_limit_windows')
    .addColumn('owner_id', 'text', (col) => col.notNull())
    .addColumn('window_start', 'timestamptz', (col) => col.notNull())
    .addColumn('requests', 'integer', (col) => col.notNull())
    .addPrimaryKeyConstraint('rate_limit_windows_pk', ['owner_id', 'window_start'])
    .execute();

  // The in-flight count of an owner, checked on every job creation.
  await db.schema
    .createIndex('jobs_owner_in_flight_idx')
    .on('jobs')
    .column('owner_id')
    .where(sql.ref('status'), 'not in', sql`('completed', 'failed', 'cancelled', 'timeout')`)
    .execute();
  // Recent completions of a type, for completion estimates.
  await db.schema
    .createIndex('jobs_type_completed_idx')
    .on('jobs')
    .columns(['type', 'completed_at desc'])
    .where(sql.ref('status'), '=', 'completed')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('jobs_type_completed_idx').execute();
  await db.schema.dropIndex('jobs_owner_in_flight_idx').execute();
  await db.schema.dropTable('rate_limit_windows').execute();
}
