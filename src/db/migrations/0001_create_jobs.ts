import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('jobs')
    // Ids are opaque ASCII: byte order ("C") makes keyset pagination independent of the locale.
    .addColumn('id', sql`text collate "C"`, (col) => col.primaryKey())
    .addColumn('kind', 'text', (col) => col.notNull())
    .addColumn('type', 'text', (col) => col.notNull())
    .addColumn('owner_id', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('progress', 'smallint', (col) =>
      col
        .notNull()
        .defaultTo(0)
        .check(sql`progress between 0 and 100`),
    )
    .addColumn('phase', 'text')
    .addColumn('input', 'jsonb', (col) => col.notNull())
    .addColumn('result', 'jsonb')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('attempt', 'integer', (col) => col.notNull().defaultTo(1))
    .addColumn('workflow_id', 'text', (col) => col.notNull().unique())
    .addColumn('run_id', 'text')
    .addColumn('idempotency_key', 'text')
    .addColumn('projection_seq', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('completed_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();

  // An owner's listing, newest first, with keyset pagination on (created_at, id); one index
  // per filter the API offers so each filtered page is an index range scan.
  await db.schema
    .createIndex('jobs_owner_created_idx')
    .on('jobs')
    .columns(['owner_id', 'created_at desc', 'id desc'])
    .execute();
  await db.schema
    .createIndex('jobs_owner_status_created_idx')
    .on('jobs')
    .columns(['owner_id', 'status', 'created_at desc', 'id desc'])
    .execute();
  await db.schema
    .createIndex('jobs_owner_type_created_idx')
    .on('jobs')
    .columns(['owner_id', 'type', 'created_at desc', 'id desc'])
    .execute();
  await db.schema
    .createIndex('jobs_owner_idempotency_key_idx')
    .on('jobs')
    .columns(['owner_id', 'idempotency_key'])
    .unique()
    .where(sql.ref('idempotency_key'), 'is not', null)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('jobs').execute();
}
