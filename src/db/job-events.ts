import { sql } from 'kysely';
import type { JobEvent, JobEventCursor, JobOutput } from '../jobs/job-event.js';
import { isTerminalStatus, type JobStatus } from '../jobs/model.js';
import type { Db } from './database.js';
import type { JobEventRow } from './schema.js';

/**
 * The next events of many readers in one query: for each cursor, up to `limit` events after
 * it, in log order (seq, then part), tagged with the cursor's index.
 */
export async function readJobEvents(
  db: Db,
  cursors: readonly JobEventCursor[],
  limit: number,
): Promise<{ cursor: number; event: JobEvent }[]> {
  if (cursors.length === 0) return [];
  const wanted = sql.join(
    cursors.map(
      ({ jobId, afterSeq, afterPart = 0 }, index) =>
        sql`(${index}::int, ${jobId}::text, ${afterSeq}::int, ${afterPart}::int)`,
    ),
  );
  const { rows } = await sql<JobEventRow & { cursor: number }>`
    select c.cursor, e.*
    from (values ${wanted}) as c(cursor, job_id, after_seq, after_part)
    cross join lateral (
      select * from job_events
      where job_id = c.job_id and (seq, part) > (c.after_seq, c.after_part)
      order by seq, part
      limit ${limit}
    ) as e
    order by c.cursor, e.seq, e.part
  `.execute(db);
  return rows.map((row) => ({ cursor: row.cursor, event: toJobEvent(row) }));
}

/**
 * Appends a piece of a job's streamed output to its event log, numbered after the job's last
 * state: its projection sequence number, and the next part. It takes the job row's lock, as a
 * state update does, so events commit in the order of their numbers and a reader that has one
 * has every one before it. A job that has ended takes no more output (a piece that arrives
 * after a cancel); returns whether the piece was written.
 */
export async function appendJobOutput(db: Db, jobId: string, output: JobOutput): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const job = await trx
      .selectFrom('jobs')
      .select(['status', 'progress', 'phase', 'attempt', 'projection_seq'])
      .where('id', '=', jobId)
      .forUpdate()
      .executeTakeFirst();
    if (!job || isTerminalStatus(job.status)) return false;
    const last = await lastJobOutputPart(trx, jobId, job.projection_seq);
    await trx
      .insertInto('job_events')
      .values({
        job_id: jobId,
        seq: job.projection_seq,
        part: last + 1,
        type: 'output',
        status: job.status,
        progress: job.progress,
        phase: job.phase,
        attempt: job.attempt,
        error_code: null,
        error_message: null,
        output_text: output.text,
        output_offset: output.offset,
      })
      .execute();
    return true;
  });
}

/** The last part of output logged after state `seq` of the job's log; 0 for none. */
export async function lastJobOutputPart(db: Db, jobId: string, seq: number): Promise<number> {
  const { last } = await db
    .selectFrom('job_events')
    .select(sql<number>`coalesce(max(part), 0)`.as('last'))
    .where('job_id', '=', jobId)
    .where('seq', '=', seq)
    .executeTakeFirstOrThrow();
  return last;
}

/** The status of state `seq` in the job's log; undefined when no such state was logged. */
export async function jobStatusAt(
  db: Db,
  jobId: string,
  seq: number,
): Promise<JobStatus | undefined> {
  const row = await db
    .selectFrom('job_events')
    .select('status')
    .where('job_id', '=', jobId)
    .where('seq', '=', seq)
    .where('part', '=', 0)
    .executeTakeFirst();
  return row?.status;
}

function toJobEvent(row: JobEventRow): JobEvent {
  const type = row.type === 'output' || row.type === 'progress' ? row.type : 'status';
  return {
    jobId: row.job_id,
    seq: row.seq,
    part: row.part,
    type,
    status: row.status,
    progress: row.progress,
    phase: row.phase,
    attempt: row.attempt,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
    output:
      type === 'output' ? { text: row.output_text ?? '', offset: row.output_offset ?? 0 } : null,
    at: new Date(row.created_at).toISOString(),
  };
}
