import { sql } from 'kysely';
import type { JobEvent, JobEventCursor } from '../jobs/job-event.js';
import type { Db } from './database.js';
import type { JobEventRow } from './schema.js';

/**
 * The next events of many readers in one query: for each cursor, up to `limit` events after
 * it, in order, tagged with the cursor's index.
 */
export async function readJobEvents(
  db: Db,
  cursors: readonly JobEventCursor[],
  limit: number,
): Promise<{ cursor: number; event: JobEvent }[]> {
  if (cursors.length === 0) return [];
  const wanted = sql.join(
    cursors.map(
      ({ jobId, afterSeq }, index) => sql`(${index}::int, ${jobId}::text, ${afterSeq}::int)`,
    ),
  );
  const { rows } = await sql<JobEventRow & { cursor: number }>`
    select c.cursor, e.*
    from (values ${wanted}) as c(cursor, job_id, after_seq)
    cross join lateral (
      select * from job_events
      where job_id = c.job_id and seq > c.after_seq
      order by seq
      limit ${limit}
    ) as e
    order by c.cursor, e.seq
  `.execute(db);
  return rows.map((row) => ({ cursor: row.cursor, event: toJobEvent(row) }));
}

function toJobEvent(row: JobEventRow): JobEvent {
  return {
    jobId: row.job_id,
    seq: row.seq,
    type: row.type === 'progress' ? 'progress' : 'status',
    status: row.status,
    progress: row.progress,
    phase: row.phase,
    attempt: row.attempt,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
    at: new Date(row.created_at).toISOString(),
  };
}
