import { sql, type Kysely } from 'kysely';

/**
 * The statuses of `jobStatuses` when this migration was written. Spelled out, not imported: a
 * migration stays what it was when it ran, and a later status comes with a later migration.
 */
const statuses = sql.join(
  [
    'pending',
    'running',
    'analyzing',
    'generating',
    'transferring',
    'processing',
    'completed',
    'failed',
    'cancelled',
    'timeout',
  ].map((status) => sql.lit(status)),
);

export async function up(db: Kysely<unknown>): Promise<void> {
  // A status outside the set fails the write that tries it, where it is made, instead of
  // reaching the API as a row its views cannot serve.
  for (const table of ['jobs', 'job_events']) {
    await db.schema
      .alterTable(table)
      .addCheckConstraint(`${table}_status_check`, sql`status in (${statuses})`)
      .execute();
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['jobs', 'job_events']) {
    await db.schema.alterTable(table).dropConstraint(`${table}_status_check`).execute();
  }
}
