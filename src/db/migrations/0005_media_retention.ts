import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // When the media sweep deleted a job's uploads and outputs; null while they are kept.
  await db.schema.alterTable('jobs').addColumn('media_deleted_at', 'timestamptz').execute();
  // The sweep's question: ended jobs whose media is still stored, oldest first.
  await db.schema
    .createIndex('jobs_media_kept_idx')
    .on('jobs')
    .column('completed_at')
    .where(sql.ref('media_deleted_at'), 'is', null)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('jobs_media_kept_idx').execute();
  await db.schema.alterTable('jobs').dropColumn('media_deleted_at').execute();
}
