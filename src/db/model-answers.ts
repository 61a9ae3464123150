// A model's answer is kept from the moment it was charged until its job attempt ends: a retried
// activity of the same attempt reads it instead of asking (and paying) again.
import { sql } from 'kysely';
import type { Db } from './database.js';
import { terminalStatusList } from './jobs.js';

/** A finished, charged model answer and the charge it was made under. */
export interface KeptModelAnswer {
  /** The call within its job attempt: the same for every attempt of its activity. */
  callKey: string;
  jobId: string;
  /** The cost ledger key the answer was charged under. */
  ledgerKey: string;
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  answer: string;
}

/**
 * Keeps an answer under its call key, for the job's current attempt, while the job is in flight
 * (a job that has ended has no activity left to retry). The first answer kept for a key stays.
 * Returns whether it was kept.
 */
export async function keepModelAnswer(db: Db, kept: KeptModelAnswer): Promise<boolean> {
  const { rows } = await sql<{ call_key: string }>`
    insert into model_answers (
      call_key, job_id, attempt, ledger_key, provider, model, input_tokens, output_tokens, answer
    )
    select
      ${kept.callKey}, id, attempt, ${kept.ledgerKey}, ${kept.provider}, ${kept.model},
      ${kept.inputTokens}::bigint, ${kept.outputTokens}::bigint, ${kept.answer}
    from jobs where id = ${kept.jobId} and status not in (${terminalStatusList})
    on conflict (call_key) do nothing
    returning call_key`.execute(db);
  return rows.length > 0;
}

/** The answer kept under a call key, if one was. */
export async function findModelAnswer(
  db: Db,
  callKey: string,
): Promise<KeptModelAnswer | undefined> {
  const row = await db
    .selectFrom('model_answers')
    .select([
      'call_key',
      'job_id',
      'ledger_key',
      'provider',
      'model',
      'input_tokens',
      'output_tokens',
      'answer',
    ])
    .where('call_key', '=', callKey)
    .executeTakeFirst();
  return (
    row && {
      callKey: row.call_key,
      jobId: row.job_id,
      ledgerKey: row.ledger_key,
      provider: row.provider,
      model: row.model,
      inputTokens: Number(row.input_tokens),
      outputTokens: Number(row.output_tokens),
      answer: row.answer,
    }
  );
}

/**
 * Forgets the answers kept for a job's attempts up to `attempt` (the one that ended): a retry of
 * the job is a new attempt, which asks the model again. Returns how many were forgotten.
 */
export async function forgetModelAnswers(db: Db, jobId: string, attempt: number): Promise<number> {
  const result = await db
    .deleteFrom('model_answers')
    .where('job_id', '=', jobId)
    .where('attempt', '<=', attempt)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Forgets the answers kept for attempts that have ended (the job ended, or a retry began a new
 * attempt). An attempt's end forgets its answers in its own statement, but an answer whose
 * write was under way as that statement began is not there for it to see, and stayed for good.
 * Returns how many were forgotten.
 */
export async function forgetAnswersOfEndedAttempts(db: Db): Promise<number> {
  const result = await sql`
    delete from model_answers
    using jobs
    where jobs.id = model_answers.job_id
      and (model_answers.attempt < jobs.attempt or jobs.status in (${terminalStatusList}))`.execute(
    db,
  );
  return Number(result.numAffectedRows ?? 0);
}
