import { sql } from 'kysely';
import type { Db } from './database.js';

/** The operation a provider accepted for an idempotency key, if one was recorded. */
export async function findProviderOperation(
  db: Db,
  idempotencyKey: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('provider_operations')
    .select('operation_name')
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();
  return row?.operation_name;
}

/** Records the operation a provider accepted; the first record of a key wins. */
export async function recordProviderOperation(
  db: Db,
  operation: { idempotencyKey: string; jobId: string; operationName: string },
): Promise<void> {
  await db
    .insertInto('provider_operations')
    .values({
      idempotency_key: operation.idempotencyKey,
      job_id: operation.jobId,
      operation_name: operation.operationName,
    })
    .onConflict((oc) => oc.column('idempotency_key').doNothing())
    .execute();
}

/**
 * Records how a check saw a job's operation end. The first outcome stays: a check repeated
 * after the write (its activity retried) sees the same end.
 */
export async function recordOperationOutcome(
  db: Db,
  operation: { jobId: string; operationName: string; outcome: 'succeeded' | 'filtered' | 'failed' },
): Promise<void> {
  await db
    .updateTable('provider_operations')
    .set({ outcome: operation.outcome })
    .where('job_id', '=', operation.jobId)
    .where('operation_name', '=', operation.operationName)
    .where('outcome', 'is', null)
    .execute();
}

/**
 * The operations a job submitted under keys with `keyPart` (its kind's paid operation) that no
 * check has seen end: still running at the provider, or ended unseen.
 */
export async function listOperationsLeftRunning(
  db: Db,
  jobId: string,
  keyPart: string,
): Promise<string[]> {
  const rows = await db
    .selectFrom('provider_operations')
    .select('operation_name')
    .where('job_id', '=', jobId)
    .where('idempotency_key', 'like', `%${keyPart}%`)
    .where('outcome', 'is', null)
    .orderBy('created_at')
    .execute();
  return [...new Set(rows.map((row) => row.operation_name))];
}

/**
 * Notes that a paid submission is about to be sent under `idempotencyKey` (see migration 0022);
 * a note left by an earlier send is replaced, its time with it.
 */
export async function recordSubmissionSent(
  db: Db,
  submission: { idempotencyKey: string; jobId: string; provider: string },
): Promise<void> {
  await db
    .insertInto('provider_submissions')
    .values({
      idempotency_key: submission.idempotencyKey,
      job_id: submission.jobId,
      provider: submission.provider,
    })
    .onConflict((oc) => oc.column('idempotency_key').doUpdateSet({ sent_at: sql`now()` }))
    .execute();
}

/** How long ago a submission under the key was sent and never answered; null: none was. */
export async function unansweredSubmissionAgeMs(
  db: Db,
  idempotencyKey: string,
): Promise<number | null> {
  const row = await db
    .selectFrom('provider_submissions')
    .select(sql<number>`extract(epoch from now() - sent_at) * 1000`.as('age_ms'))
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();
  return row ? Number(row.age_ms) : null;
}

/** Forgets a submission the provider answered, or one given up on. */
export async function forgetSubmission(db: Db, idempotencyKey: string): Promise<void> {
  await db
    .deleteFrom('provider_submissions')
    .where('idempotency_key', '=', idempotencyKey)
    .execute();
}
