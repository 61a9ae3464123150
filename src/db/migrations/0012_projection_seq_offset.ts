import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A reset run counts its projection from the reset point again, below what the row holds:
  // the reconciler sets the offset once it follows the new run, so its updates still number
  // after every event already logged.
  await db.schema
    .alterTable('jobs')
    .addColumn('projection_seq_offset', 'integer', (col) => col.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').dropColumn('projection_seq_offset').execute();
}
