import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // When a waiting job said it would ask again: a job far back in a long line pauses for hours
  // between asks, and its place must outlast the pause (staleness counts from the later of
  // this and `touched_at`). Null for held leases and for rows written before it existed.
  await db.schema.alterTable('provider_leases').addColumn('asks_again_at', 'timestamptz').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('provider_leases').dropColumn('asks_again_at').execute();
}
