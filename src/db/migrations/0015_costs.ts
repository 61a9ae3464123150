import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // What each provider call consumed and cost, one row a call, tied to its job, attempt and
  // user. The key is the call's durable identity (job, attempt, operation or activity attempt),
  // so a call recorded twice (a re-attached generation, a repeated activity) is charged once.
  await db.schema
    .createTable('cost_ledger')
    .addColumn('idempotency_key', sql`text collate "C"`, (col) => col.primaryKey())
    .addColumn('job_id', 'text', (col) => col.notNull())
    .addColumn('attempt', 'integer', (col) => col.notNull())
    .addColumn('owner_id', 'text', (col) => col.notNull())
    .addColumn('kind', 'text', (col) => col.notNull())
    .addColumn('provider', 'text', (col) => col.notNull())
    .addColumn('model', 'text', (col) => col.notNull())
    .addColumn('input_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('output_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('video_seconds', sql`numeric(12, 3)`, (col) => col.notNull().defaultTo(0))
    .addColumn('price_version', 'text', (col) => col.notNull())
    .addColumn('prices', 'jsonb', (col) => col.notNull())
    .addColumn('cost', sql`numeric(20, 9)`, (col) => col.notNull().check(sql`cost >= 0`))
    .addColumn('currency', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('cost_ledger_owner_created_idx')
    .on('cost_ledger')
    .columns(['owner_id', 'created_at'])
    .execute();
  await db.schema.createIndex('cost_ledger_job_idx').on('cost_ledger').column('job_id').execute();

  // A job's estimate, held against its owner's budgets from admission until the job ends:
  // `settled` once it completed (its ledger is what it cost), `released` once it failed or was
  // cancelled. While held, the part of it the ledger has not yet charged counts as reserved.
  await db.schema
    .createTable('cost_holds')
    .addColumn('job_id', sql`text collate "C"`, (col) => col.primaryKey())
    .addColumn('owner_id', 'text', (col) => col.notNull())
    .addColumn('amount', sql`numeric(20, 9)`, (col) => col.notNull().check(sql`amount >= 0`))
    .addColumn('state', 'text', (col) =>
      col
        .notNull()
        .defaultTo('held')
        .check(sql`state in ('held', 'settled', 'released')`),
    )
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('closed_at', 'timestamptz')
    .execute();
  await db.schema
    .createIndex('cost_holds_owner_held_idx')
    .on('cost_holds')
    .column('owner_id')
    .where(sql.ref('state'), '=', 'held')
    .execute();

  // A user's own budgets, set by an admin; a user without a row has the configured defaults.
  // A null limit is no limit.
  await db.schema
    .createTable('user_budgets')
    .addColumn('owner_id', 'text', (col) => col.primaryKey())
    .addColumn('daily_limit', sql`numeric(20, 9)`)
    .addColumn('monthly_limit', sql`numeric(20, 9)`)
    .addColumn('updated_by', 'text', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .alterTable('jobs')
    .addColumn('estimated_cost', sql`numeric(20, 9)`)
    .addColumn('actual_cost', sql`numeric(20, 9)`, (col) => col.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('jobs')
    .dropColumn('estimated_cost')
    .dropColumn('actual_cost')
    .execute();
  await db.schema.dropTable('user_budgets').execute();
  await db.schema.dropTable('cost_holds').execute();
  await db.schema.dropTable('cost_ledger').execute();
}
