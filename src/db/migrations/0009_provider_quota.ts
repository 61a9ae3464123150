import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The operations each provider runs for us, and the jobs waiting for one: shared by every
  // worker, so a per-provider limit holds across processes. One row per job and provider.
  await db.schema
    .createTable('provider_leases')
    .addColumn('provider', 'text', (col) => col.notNull())
    .addColumn('job_id', 'text', (col) => col.notNull())
    .addColumn('owner_id', 'text', (col) => col.notNull())
    .addColumn('state', 'text', (col) => col.notNull().check(sql`state in ('held', 'waiting')`))
    .addColumn('requested_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    // Refreshed by every look at the operation or retry of the wait; a row nobody refreshes
    // (a workflow terminated by an operator) stops counting once it is stale.
    .addColumn('touched_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('provider_leases_pkey', ['provider', 'job_id'])
    .execute();
  await db.schema
    .createIndex('provider_leases_job_idx')
    .on('provider_leases')
    .column('job_id')
    .execute();

  // A provider that answered 429 is left alone by every worker until `until`.
  await db.schema
    .createTable('provider_cooldowns')
    .addColumn('provider', 'text', (col) => col.primaryKey())
    .addColumn('until', 'timestamptz', (col) => col.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('provider_cooldowns').execute();
  await db.schema.dropTable('provider_leases').execute();
}
