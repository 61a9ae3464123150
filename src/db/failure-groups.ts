import { sql, type Insertable } from 'kysely';
import type { FailureFingerprint } from '../jobs/failure-fingerprint.js';
import type { Db } from './database.js';
import type { JobRedriveRow, JobRedriveTable, JobRow } from './schema.js';

export interface FailureGroupFilters {
  kind?: string | undefined;
  code?: string | undefined;
  /** Inclusive lower bound on when the jobs ended. */
  from?: Date | undefined;
  /** Exclusive upper bound on when the jobs ended. */
  to?: Date | undefined;
}

export interface FailureGroup extends FailureFingerprint {
  count: number;
  firstSeenAt: Date;
  lastSeenAt: Date;
  /** The latest jobs of the group, newest first. */
  exampleJobIds: string[];
}

/** Statuses of a job that failed: what failure groups and re-drives take. */
const failedStatuses = sql.join(['failed', 'timeout'].map((status) => sql.lit(status)));

/**
 * The failed and timed-out jobs of every owner, grouped by fingerprint, largest group first.
 * The status condition is the partial index's own (migration 0013), as literals.
 */
export async function listFailureGroups(
  db: Db,
  filters: FailureGroupFilters,
  options: { limit: number; examples: number },
): Promise<FailureGroup[]> {
  const { rows } = await sql<FailureGroup>`
    select
      kind, failed_stage as stage, error_code as code, failed_provider as provider,
      count(*)::integer as count,
      min(completed_at) as "firstSeenAt",
      max(completed_at) as "lastSeenAt",
      (array_agg(id order by completed_at desc, id desc))[1:${options.examples}::integer]
        as "exampleJobIds"
    from jobs
    where status in (${failedStatuses}) and completed_at is not null
      ${filters.kind === undefined ? sql`` : sql`and kind = ${filters.kind}`}
      ${filters.code === undefined ? sql`` : sql`and error_code = ${filters.code}`}
      ${filters.from === undefined ? sql`` : sql`and completed_at >= ${filters.from}`}
      ${filters.to === undefined ? sql`` : sql`and completed_at < ${filters.to}`}
    group by kind, failed_stage, error_code, failed_provider
    order by count(*) desc, max(completed_at) desc
    limit ${options.limit}::integer`.execute(db);
  return rows;
}

/** The failed and timed-out jobs of one group, the longest-failed first. */
export async function listFailedJobsOfGroup(
  db: Db,
  group: FailureFingerprint,
  limit: number,
): Promise<JobRow[]> {
  const { rows } = await sql<JobRow>`
    select * from jobs
    where status in (${failedStatuses}) and completed_at is not null
      and kind = ${group.kind}
      and failed_stage is not distinct from ${group.stage}::text
      and error_code is not distinct from ${group.code}::text
      and failed_provider is not distinct from ${group.provider}::text
    order by completed_at, id
    limit ${limit}::integer`.execute(db);
  return rows;
}

/** Jobs by id, whoever owns them (an operator's read), in no particular order. */
export async function findJobsById(db: Db, ids: readonly string[]): Promise<JobRow[]> {
  if (ids.length === 0) return [];
  return db
    .selectFrom('jobs')
    .selectAll()
    .where('id', 'in', [...ids])
    .execute();
}

/**
 * Records one re-drive: the link between the failed run and the attempt it started, or may
 * have started (a re-drive Temporal did not answer in time keeps its record: findRedrive).
 */
export async function recordRedrive(db: Db, redrive: Insertable<JobRedriveTable>): Promise<void> {
  await db.insertInto('job_redrives').values(redrive).execute();
}

/** The re-drive recorded for one attempt of a job, if any. */
export async function findRedrive(
  db: Db,
  redrive: { jobId: string; attempt: number },
): Promise<JobRedriveRow | undefined> {
  return db
    .selectFrom('job_redrives')
    .selectAll()
    .where('job_id', '=', redrive.jobId)
    .where('attempt', '=', redrive.attempt)
    .executeTakeFirst();
}

/** Forgets the re-drive of an attempt that never started: its workflow refused it or closed. */
export async function forgetRedrive(
  db: Db,
  redrive: { jobId: string; attempt: number },
): Promise<void> {
  await db
    .deleteFrom('job_redrives')
    .where('job_id', '=', redrive.jobId)
    .where('attempt', '=', redrive.attempt)
    .execute();
}
