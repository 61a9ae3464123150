import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // An upload's folder, written before its first file is stored and forgotten once the upload
  // became a job or was deleted: one left here by an API that died mid-request is found by the
  // media sweep, which deletes the folder unless a job uses it. `job_id` is set just before the
  // job's workflow is started, so an upload without it never became a job. Few rows: the
  // uploads under way and those an API left.
  await db.schema
    .createTable('upload_batches')
    .addColumn('batch_id', sql`text collate "C"`, (col) => col.primaryKey())
    .addColumn('owner_id', 'text', (col) => col.notNull())
    .addColumn('job_id', 'text')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('upload_batches').execute();
}
