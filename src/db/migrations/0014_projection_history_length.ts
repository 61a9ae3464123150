import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The workflow's history length when it projected the row's state. A workflow task whose
  // completion the server refused (new events arrived while it ran) has already run its
  // projections; the task that replaces it decides the same sequence numbers again, from a
  // longer history, and its state is the one that happened.
  await db.schema
    .alterTable('jobs')
    .addColumn('projection_history_length', 'integer', (col) => col.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').dropColumn('projection_history_length').execute();
}
