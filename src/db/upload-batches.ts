import { sql } from 'kysely';
import type { Db } from './database.js';

/** An upload's folder, recorded before its first file is stored (migration 0024). */
export async function recordUploadBatch(
  db: Db,
  batch: { batchId: string; ownerId: string },
): Promise<void> {
  await db
    .insertInto('upload_batches')
    .values({ batch_id: batch.batchId, owner_id: batch.ownerId })
    .execute();
}

/** Names the job an upload is about to start: from here on the sweep asks Temporal about it. */
export async function claimUploadBatch(db: Db, batchId: string, jobId: string): Promise<void> {
  await db
    .updateTable('upload_batches')
    .set({ job_id: jobId })
    .where('batch_id', '=', batchId)
    .execute();
}

/** The upload is a job's, or deleted: nothing is left for the sweep to check. */
export async function forgetUploadBatch(db: Db, batchId: string): Promise<void> {
  await db.deleteFrom('upload_batches').where('batch_id', '=', batchId).execute();
}

export interface StaleUploadBatch {
  batchId: string;
  /** The job it was about to start, if it got that far. */
  jobId: string | null;
  /** That job's input, when its row exists. */
  jobInput: unknown;
}

/**
 * Upload folders recorded more than `olderThanMs` ago and never forgotten, in order of id after
 * `afterBatchId`: a folder left for later (its job's workflow still starting) does not hold up
 * the ones after it.
 */
export async function findStaleUploadBatches(
  db: Db,
  {
    olderThanMs,
    limit,
    afterBatchId,
  }: { olderThanMs: number; limit: number; afterBatchId: string | null },
): Promise<StaleUploadBatch[]> {
  const rows = await db
    .selectFrom('upload_batches')
    .leftJoin('jobs', 'jobs.id', 'upload_batches.job_id')
    .select(['upload_batches.batch_id', 'upload_batches.job_id', 'jobs.input'])
    .where(
      'upload_batches.created_at',
      '<',
      sql<Date>`now() - ${olderThanMs} * interval '1 millisecond'`,
    )
    .$if(afterBatchId !== null, (query) =>
      query.where('upload_batches.batch_id', '>', afterBatchId!),
    )
    .orderBy('upload_batches.batch_id')
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    batchId: row.batch_id,
    jobId: row.job_id,
    jobInput: row.input ?? null,
  }));
}
