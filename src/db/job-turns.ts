/**
 * The line of jobs that share a concurrency key: one owner's jobs with the same key run one at a
 * time, in line order (`queue_entered_at`, then id). A job takes the turn when no job of its
 * line is ahead of it in flight, and holds it until it ends; `claimJobTurn` decides under a lock
 * per line, so two jobs never both take it, whatever order their rows were written in.
 */
import { sql } from 'kysely';
import type { JobTurn } from '../jobs/contracts.js';
import { terminalStatuses } from '../jobs/model.js';
import type { Db } from './database.js';

/** Most jobs one end wakes; the rest of a longer line see it at their next timed check. */
const maxJobsWoken = 100;

async function lockLine(db: Db, ownerId: string, key: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${`turn:${ownerId}:${key}`}))`.execute(db);
}

/**
 * Gives `attempt` of the job the turn of its key, or says how many jobs are ahead of it: those
 * in flight that hold the turn or entered the line before it. An attempt after the first (a
 * retry) enters the line again at its end. Asking again for the attempt that holds the turn
 * grants it again; a job without a key always has it.
 */
export async function claimJobTurn(
  db: Db,
  { jobId, attempt }: { jobId: string; attempt: number },
): Promise<JobTurn> {
  return db.transaction().execute(async (trx) => {
    const line = await trx
      .selectFrom('jobs')
      .select(['owner_id', 'concurrency_key'])
      .where('id', '=', jobId)
      .executeTakeFirstOrThrow();
    if (line.concurrency_key === null) return { granted: true };
    await lockLine(trx, line.owner_id, line.concurrency_key);
    const self = await trx
      .selectFrom('jobs')
      .select(['queue_entered_at', 'queue_attempt', 'turn_attempt'])
      .where('id', '=', jobId)
      .executeTakeFirstOrThrow();
    if (self.turn_attempt === attempt) return { granted: true };
    let enteredAt = self.queue_entered_at;
    if ((self.queue_attempt ?? 1) < attempt || enteredAt === null) {
      const entered = await trx
        .updateTable('jobs')
        .set({ queue_entered_at: sql<Date>`now()`, queue_attempt: attempt, turn_attempt: null })
        .where('id', '=', jobId)
        .returning('queue_entered_at')
        .executeTakeFirstOrThrow();
      enteredAt = entered.queue_entered_at;
    }
    const ahead = await trx
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .where('owner_id', '=', line.owner_id)
      .where('concurrency_key', '=', line.concurrency_key)
      .where('status', 'not in', [...terminalStatuses])
      .where('id', '<>', jobId)
      // A job ahead holds the turn for the attempt it is on, or entered the line for that
      // attempt before this one. A job retried since it held the turn or entered (its row on
      // the next attempt) is neither: it enters again at the end once that attempt asks, and
      // until then holds up no one.
      .where((eb) =>
        eb.or([
          eb('turn_attempt', '=', eb.ref('attempt')),
          eb.and([
            sql<boolean>`coalesce(queue_attempt, 1) = attempt`,
            sql<boolean>`(queue_entered_at, id) < (${enteredAt}::timestamptz, ${jobId})`,
          ]),
        ]),
      )
      .executeTakeFirstOrThrow();
    if (Number(ahead.count) > 0) return { granted: false, ahead: Number(ahead.count) };
    await trx.updateTable('jobs').set({ turn_attempt: attempt }).where('id', '=', jobId).execute();
    return { granted: true };
  });
}

/**
 * The jobs in flight waiting in the line of `jobId`'s key, first in line first: those its end
 * may let go, or move up. None for a job without a key.
 */
export async function listJobsAwaitingTurn(db: Db, jobId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('jobs as waiting')
    .innerJoin('jobs as ended', (join) =>
      join
        .onRef('waiting.owner_id', '=', 'ended.owner_id')
        .onRef('waiting.concurrency_key', '=', 'ended.concurrency_key'),
    )
    .select('waiting.id')
    .where('ended.id', '=', jobId)
    .where('waiting.id', '<>', jobId)
    .where('waiting.status', 'not in', [...terminalStatuses])
    // Not holding the turn for the attempt it is on (a retried job's turn was its last attempt's).
    .where(sql<boolean>`waiting.turn_attempt is distinct from waiting.attempt`)
    .orderBy('waiting.queue_entered_at')
    .orderBy('waiting.id')
    .limit(maxJobsWoken)
    .execute();
  return rows.map((row) => row.id);
}
