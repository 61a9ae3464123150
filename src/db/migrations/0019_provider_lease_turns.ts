import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // Each owner's waiters in the order they take turns: whom a freed lease wakes is read from
  // the first few of each owner's, not from the whole waiting list sorted.
  await db.schema
    .createIndex('provider_leases_waiting_turns_idx')
    .on('provider_leases')
    .columns(['provider', 'owner_id', 'requested_at', 'job_id'])
    .where(sql.ref('state'), '=', 'waiting')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('provider_leases_waiting_turns_idx').execute();
}
