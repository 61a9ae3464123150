import { type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The moment a provider's next request may go out. A request takes it and pushes it on by the
  // provider's interval, so the requests of every worker are spaced at the configured rate.
  await db.schema
    .createTable('provider_request_pacing')
    .addColumn('provider', 'text', (col) => col.primaryKey())
    .addColumn('next_at', 'timestamptz', (col) => col.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('provider_request_pacing').execute();
}
