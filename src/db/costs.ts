import { sql } from 'kysely';
import { statementOnce, type Db } from './database.js';
import type { UserBudgetTable } from './schema.js';
import { terminalStatusList } from './jobs.js';

/** A numeric column or sum as the text PostgreSQL (and PGlite) print it, with 9 decimals. */
const money = (expression: ReturnType<typeof sql>) =>
  sql<string>`(${expression})::numeric(20, 9)::text`;

export interface LedgerEntry {
  /** The call's durable identity: recording the same key again charges nothing. */
  idempotencyKey: string;
  jobId: string;
  kind: 'text' | 'analysis' | 'video';
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  videoSeconds: number;
  priceVersion: string;
  /** The prices applied, their date and source. */
  prices: unknown;
  /** Decimal text, 9 decimals at most. */
  cost: string;
  currency: string;
}

/**
 * Records one provider call against its job, the job's current attempt and its owner, and adds
 * its cost to the job's actual cost, in one statement. Returns false when the key was recorded
 * already (nothing is charged again) or the job has no row.
 */
export async function recordLedgerEntry(db: Db, entry: LedgerEntry): Promise<boolean> {
  const { rows } = await sql<{ job_id: string }>`
    with inserted as (
      insert into cost_ledger (
        idempotency_key, job_id, attempt, owner_id, kind, provider, model, input_tokens,
        output_tokens, video_seconds, price_version, prices, cost, currency
      )
      select
        ${entry.idempotencyKey}, id, attempt, owner_id, ${entry.kind}, ${entry.provider},
        ${entry.model}, ${entry.inputTokens}::bigint, ${entry.outputTokens}::bigint,
        ${entry.videoSeconds}::numeric, ${entry.priceVersion}, ${JSON.stringify(entry.prices)}::jsonb,
        ${entry.cost}::numeric, ${entry.currency}
      from jobs where id = ${entry.jobId}
      on conflict (idempotency_key) do nothing
      returning job_id, cost
    )
    update jobs set actual_cost = jobs.actual_cost + inserted.cost
    from inserted where jobs.id = inserted.job_id
    returning jobs.id as job_id`.execute(db);
  return rows.length > 0;
}

/** A charge taken back: what it was, by the labels the cost metrics count it under. */
export interface VoidedCharge {
  provider: string;
  kind: string;
  cost: string;
}

/**
 * Takes back a charge the provider did not bill after all: a generation charged as its job
 * ended, before anyone knew how it would end, later seen filtered or failed. The row stays, its
 * cost 0 and the reason kept with its prices (`voided`), and the job's actual cost drops by what
 * it was, in one statement. Only a charge made at its job's end (its prices carry a note) and
 * not taken back already; returns the charge taken back, or null.
 */
export async function voidEndOfJobCharge(
  db: Db,
  { idempotencyKey, reason }: { idempotencyKey: string; reason: string },
): Promise<VoidedCharge | null> {
  const { rows } = await sql<VoidedCharge>`
    with charged as (
      select idempotency_key, job_id, provider, kind, cost from cost_ledger
      where idempotency_key = ${idempotencyKey} and cost > 0 and prices ? 'note'
      for update
    ), voided as (
      update cost_ledger l
      set cost = 0, prices = l.prices || jsonb_build_object('voided', ${reason}::text)
      from charged where l.idempotency_key = charged.idempotency_key
      returning charged.job_id, charged.provider, charged.kind, charged.cost
    )
    update jobs set actual_cost = jobs.actual_cost - voided.cost
    from voided where jobs.id = voided.job_id
    returning voided.provider, voided.kind, voided.cost::text as cost`.execute(db);
  return rows[0] ?? null;
}

/**
 * Holds a job's estimate for one attempt against its owner's budgets; call under the owner's
 * lock, in the transaction that checked the budgets. Returns false when that attempt is held
 * already (another request for the same attempt took it).
 */
export async function holdCost(
  db: Db,
  hold: { jobId: string; ownerId: string; amount: string; attempt: number },
): Promise<boolean> {
  const result = await costHold(db, hold);
  return (result.numAffectedRows ?? 0n) > 0n;
}

/** holdCost's statement, compiled once (statementOnce): every admission sends it. */
const costHold = statementOnce<
  { jobId: string; ownerId: string; amount: string; attempt: number },
  never
>((db, p) =>
  db
    .insertInto('cost_holds')
    .values({
      job_id: p('jobId'),
      owner_id: p('ownerId'),
      amount: sql<string>`${p('amount')}::numeric`,
      attempt: sql<number>`${p('attempt')}::integer`,
    })
    .onConflict((oc) => oc.columns(['job_id', 'attempt']).doNothing())
    .compile(),
);

/** Whether an attempt of a job has a hold still open. */
export async function isCostHeld(db: Db, jobId: string, attempt: number): Promise<boolean> {
  const row = await db
    .selectFrom('cost_holds')
    .select('job_id')
    .where('job_id', '=', jobId)
    .where('attempt', '=', attempt)
    .where('state', '=', 'held')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Drops a hold whose attempt never started (its admission, start or retry failed): every hold
 * of the job, or only the given attempt's.
 */
export async function dropCostHold(db: Db, jobId: string, attempt?: number): Promise<void> {
  let query = db.deleteFrom('cost_holds').where('job_id', '=', jobId);
  if (attempt !== undefined) query = query.where('attempt', '=', attempt);
  await query.execute();
}

/** An open cost hold whose attempt may never have started: listCostHoldsLeftOpen. */
export interface CostHoldLeftOpen {
  jobId: string;
  attempt: number;
  /** The workflow that would run the attempt (the job's id when the job has no row). */
  workflowId: string;
}

/**
 * Open cost holds older than `staleMs` that the process which took them may have left behind
 * (an API that died between taking a hold and reaching Temporal), oldest first: a job's hold
 * with no row and no live reservation (its workflow may never have started), and a hold of an
 * attempt after the one an ended job's row shows (a retry whose Update may never have been
 * sent). Whether the attempt can still run is the workflow's to say: see dropCostHoldLeftOpen.
 */
export async function listCostHoldsLeftOpen(
  db: Db,
  query: { staleMs: number; limit: number },
): Promise<CostHoldLeftOpen[]> {
  const { rows } = await sql<CostHoldLeftOpen>`
    select h.job_id as "jobId", h.attempt, coalesce(j.workflow_id, h.job_id) as "workflowId"
    from cost_holds h
    left join jobs j on j.id = h.job_id
    where h.state = 'held'
      and h.created_at < now() - make_interval(secs => ${query.staleMs / 1000})
      and (
        (j.id is null and not exists (
          select 1 from job_reservations r where r.job_id = h.job_id and r.expires_at > now()))
        or (j.status in (${terminalStatusList}) and h.attempt > j.attempt)
      )
    order by h.created_at, h.job_id, h.attempt
    limit ${query.limit}`.execute(db);
  return rows;
}

/**
 * Drops one hold of listCostHoldsLeftOpen once its workflow can no longer run its attempt
 * (never started, or closed): the attempt never started, so nothing was spent under it. Only
 * if it is still open. Returns whether it was dropped.
 */
export async function dropCostHoldLeftOpen(
  db: Db,
  hold: { jobId: string; attempt: number },
): Promise<boolean> {
  const result = await db
    .deleteFrom('cost_holds')
    .where('job_id', '=', hold.jobId)
    .where('attempt', '=', hold.attempt)
    .where('state', '=', 'held')
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/**
 * Ends the holds of a job's attempts up to `attempt` (the one that ended): `settled` when it
 * completed, `released` when it failed, timed out or was cancelled. A later attempt's hold (a
 * retry accepted before this end was projected) stays. Its ledger stays what it spent. Returns
 * false when no hold was open.
 */
export async function closeCostHold(
  db: Db,
  jobId: string,
  attempt: number,
  state: 'settled' | 'released',
): Promise<boolean> {
  const result = await db
    .updateTable('cost_holds')
    .set({ state, closed_at: sql<Date>`now()` })
    .where('job_id', '=', jobId)
    .where('attempt', '<=', attempt)
    .where('state', '=', 'held')
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** An owner's spending, as decimal text: charged in the current UTC day and month, and still reserved. */
export interface BudgetUsage {
  spentToday: string;
  spentThisMonth: string;
  reserved: string;
}

const dayStart = sql`date_trunc('day', now() at time zone 'UTC') at time zone 'UTC'`;
const monthStart = sql`date_trunc('month', now() at time zone 'UTC') at time zone 'UTC'`;

/** The part of an open hold `h` its attempt's ledger has not charged yet. */
const unchargedPart = sql`greatest(h.amount - coalesce((select sum(l.cost) from cost_ledger l
  where l.job_id = h.job_id and l.attempt = h.attempt), 0), 0)`;

/**
 * What an owner has spent and holds, in one statement (one snapshot). Reserved is the part of
 * each open hold its attempt's ledger has not charged yet, so a running job counts once: its
 * spend so far plus what its estimate still allows for.
 */
export async function budgetUsage(db: Db, ownerId: string): Promise<BudgetUsage> {
  const { rows } = await sql<BudgetUsage>`
    select
      ${money(sql`(select coalesce(sum(cost), 0) from cost_ledger
        where owner_id = ${ownerId} and created_at >= ${dayStart})`)} as "spentToday",
      ${money(sql`(select coalesce(sum(cost), 0) from cost_ledger
        where owner_id = ${ownerId} and created_at >= ${monthStart})`)} as "spentThisMonth",
      ${money(sql`(select coalesce(sum(${unchargedPart}), 0)
        from cost_holds h where h.owner_id = ${ownerId} and h.state = 'held')`)} as "reserved"`.execute(
    db,
  );
  return rows[0]!;
}

export type UserBudget = Pick<
  UserBudgetTable,
  'owner_id' | 'daily_limit' | 'monthly_limit' | 'updated_by'
> & {
  updated_at: Date;
};

/** A user's own budgets, or undefined when the configured defaults apply. */
export async function findUserBudget(db: Db, ownerId: string): Promise<UserBudget | undefined> {
  return db
    .selectFrom('user_budgets')
    .select([
      'owner_id',
      sql<string | null>`daily_limit::text`.as('daily_limit'),
      sql<string | null>`monthly_limit::text`.as('monthly_limit'),
      'updated_by',
      'updated_at',
    ])
    .where('owner_id', '=', ownerId)
    .executeTakeFirst();
}

/** Sets a user's own budgets (null: no limit), replacing any earlier ones. */
export async function setUserBudget(
  db: Db,
  budget: { ownerId: string; daily: string | null; monthly: string | null; updatedBy: string },
): Promise<void> {
  await db
    .insertInto('user_budgets')
    .values({
      owner_id: budget.ownerId,
      daily_limit: budget.daily,
      monthly_limit: budget.monthly,
      updated_by: budget.updatedBy,
    })
    .onConflict((oc) =>
      oc.column('owner_id').doUpdateSet({
        daily_limit: budget.daily,
        monthly_limit: budget.monthly,
        updated_by: budget.updatedBy,
        updated_at: sql<Date>`now()`,
      }),
    )
    .execute();
}

/** Gives a user the configured defaults again; returns whether they had their own. */
export async function deleteUserBudget(db: Db, ownerId: string): Promise<boolean> {
  const result = await db
    .deleteFrom('user_budgets')
    .where('owner_id', '=', ownerId)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

export interface SpendRow {
  ownerId: string;
  /** The UTC day, YYYY-MM-DD. */
  day: string;
  kind: string;
  provider: string;
  calls: number;
  cost: string;
}

/** Spending by owner, UTC day and kind of call, from day `from` to day `to` (both inclusive, YYYY-MM-DD); one owner or all. */
export async function spendByDay(
  db: Db,
  range: { ownerId: string | null; from: string; to: string },
): Promise<SpendRow[]> {
  // The end is the day after `to`, computed here: in JavaScript that day may be year 10000,
  // which node-postgres writes in a form PostgreSQL does not read.
  const { rows } = await sql<SpendRow>`
    select owner_id as "ownerId",
      to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as day,
      kind, provider, count(*)::integer as calls, ${money(sql`sum(cost)`)} as cost
    from cost_ledger
    where created_at >= ${range.from}::date::timestamp at time zone 'UTC'
      and created_at < (${range.to}::date + 1)::timestamp at time zone 'UTC'
      ${range.ownerId === null ? sql`` : sql`and owner_id = ${range.ownerId}`}
    group by 1, 2, 3, 4
    order by 1, 2, 3, 4`.execute(db);
  return rows;
}

/** What each owner's open holds still reserve (see budgetUsage); one owner or all. */
export async function reservedByOwner(
  db: Db,
  ownerId: string | null,
): Promise<{ ownerId: string; reserved: string }[]> {
  const { rows } = await sql<{ ownerId: string; reserved: string }>`
    select h.owner_id as "ownerId",
      ${money(sql`sum(${unchargedPart})`)} as reserved
    from cost_holds h
    where h.state = 'held' ${ownerId === null ? sql`` : sql`and h.owner_id = ${ownerId}`}
    group by 1 order by 1`.execute(db);
  return rows;
}

/** The ledger of one job, oldest first. */
export async function jobLedger(db: Db, jobId: string) {
  return db
    .selectFrom('cost_ledger')
    .select([
      'idempotency_key',
      'attempt',
      'owner_id',
      'kind',
      'provider',
      'model',
      sql<string>`input_tokens::text`.as('input_tokens'),
      sql<string>`output_tokens::text`.as('output_tokens'),
      sql<string>`video_seconds::text`.as('video_seconds'),
      'price_version',
      'prices',
      sql<string>`cost::text`.as('cost'),
      'currency',
      'created_at',
    ])
    .where('job_id', '=', jobId)
    .orderBy('created_at')
    .orderBy('idempotency_key')
    .execute();
}

/**
 * The seconds of video a vlog asked for (its `durationSeconds`), which Veo bills per generated
 * video: its answer names the videos, not their length. Read from the job's row because the
 * generation check's input, fixed by running histories, does not carry it.
 */
export async function requestedVideoSeconds(db: Db, jobId: string): Promise<number | null> {
  const row = await db
    .selectFrom('jobs')
    .select(sql<string | null>`input->>'durationSeconds'`.as('seconds'))
    .where('id', '=', jobId)
    .executeTakeFirst();
  return row?.seconds ? Number(row.seconds) : null;
}
