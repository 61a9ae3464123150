import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // How a check saw a paid operation end: `succeeded` (billed, charged then), `filtered` or
  // `failed` (not billed). Null while no check has seen it end: a job that ends then left it
  // running, and the provider bills it when it finishes, so the job's end charges it.
  await db.schema
    .alterTable('provider_operations')
    .addColumn('outcome', 'text', (col) =>
      col.check(sql`outcome in ('succeeded', 'filtered', 'failed')`),
    )
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('provider_operations').dropColumn('outcome').execute();
}
