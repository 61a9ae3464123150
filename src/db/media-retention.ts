import { sql } from 'kysely';
import { retryableStatuses, terminalStatuses } from '../jobs/model.js';
import type { Db } from './database.js';
import type { JobRow } from './schema.js';

/** What the media sweep may delete now: when a job's media expires and how many at a time. */
export interface MediaExpiry {
  kind: string;
  /** Time media is kept after its job ended. */
  retentionMs: number;
  /** Time a failed or timed-out job can still be retried; its media is kept at least this long. */
  retryWindowMs: number;
  limit: number;
}

/**
 * Margin past a failed job's retry window: the window is a workflow timer, started a moment
 * after the row's completed_at, and a retry accepted in that moment still needs the media.
 */
const retryWindowGraceMs = 60_000;

/**
 * Ended jobs of a kind whose media is still stored and has expired, oldest first. A job in
 * flight never qualifies, nor does a failed one that a retry could still need.
 */
export async function findJobsWithExpiredMedia(
  db: Db,
  expiry: MediaExpiry,
): Promise<Pick<JobRow, 'id' | 'input' | 'status'>[]> {
  const retryable = [...retryableStatuses];
  const keptFor = (ms: number) => sql<Date>`now() - ${ms} * interval '1 millisecond'`;
  return db
    .selectFrom('jobs')
    .select(['id', 'input', 'status'])
    .where('kind', '=', expiry.kind)
    .where('media_deleted_at', 'is', null)
    .where('status', 'in', [...terminalStatuses])
    .where((eb) =>
      eb.or([
        eb.and([
          eb('status', 'not in', retryable),
          eb('completed_at', '<', keptFor(expiry.retentionMs)),
        ]),
        eb.and([
          eb('status', 'in', retryable),
          eb(
            'completed_at',
            '<',
            keptFor(Math.max(expiry.retentionMs, expiry.retryWindowMs + retryWindowGraceMs)),
          ),
        ]),
      ]),
    )
    .orderBy('completed_at')
    .limit(expiry.limit)
    .execute();
}

/** Records that a job's media is gone; a second call keeps the first time. */
export async function markMediaDeleted(db: Db, jobId: string): Promise<void> {
  await db
    .updateTable('jobs')
    .set({ media_deleted_at: sql<Date>`now()` })
    .where('id', '=', jobId)
    .where('media_deleted_at', 'is', null)
    .execute();
}

/** When a job's media was deleted by the sweep, or null while it is kept (or no such job). */
export async function mediaDeletedAt(db: Db, jobId: string): Promise<Date | null> {
  const row = await db
    .selectFrom('jobs')
    .select('media_deleted_at')
    .where('id', '=', jobId)
    .executeTakeFirst();
  return row?.media_deleted_at ?? null;
}
