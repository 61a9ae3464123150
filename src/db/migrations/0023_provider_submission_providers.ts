import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The provider a submission note was written for, so that a job that ends with one still
  // unanswered (Veo may bill a generation nobody will use) is counted under that provider.
  // Notes written before this were all Veo's: the default fills them in, then goes.
  await db.schema
    .alterTable('provider_submissions')
    .addColumn('provider', 'text', (col) => col.notNull().defaultTo('veo'))
    .execute();
  await db.schema
    .alterTable('provider_submissions')
    .alterColumn('provider', (col) => col.dropDefault())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('provider_submissions').dropColumn('provider').execute();
}
