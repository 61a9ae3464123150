import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The provider a submission note was written for, so that a job that ends with one still
  // unanswered (Veo may bill a generation nobody will use) is counted under that provider.
  // Every note before this was Veo's, and so is every note a worker of the version before
  // writes during a rolling deploy, without the column: the default stays for them.
  await db.schema
    .alterTable('provider_submissions')
    .addColumn('provider', 'text', (col) => col.notNull().defaultTo('veo'))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('provider_submissions').dropColumn('provider').execute();
}
