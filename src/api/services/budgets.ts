import {
  budgetUsage,
  findUserBudget,
  holdCost,
  isCostHeld,
  type BudgetUsage,
} from '../../db/costs.js';
import type { Config } from '../../config.js';
import type { Db } from '../../db/database.js';
import { formatMoney, parseMoney } from '../../costs/money.js';
import { moneyView, type MoneyView } from '../../costs/prices.js';
import { budgetRefusals } from '../../metrics/metrics.js';
import { ApiError } from '../errors.js';

/** The configured budgets every user without their own has (decimal text; null: no limit). */
export interface BudgetDefaults {
  daily: string | null;
  monthly: string | null;
}

export function budgetDefaults(
  config: Pick<Config, 'USER_DAILY_BUDGET' | 'USER_MONTHLY_BUDGET'>,
): BudgetDefaults {
  return { daily: config.USER_DAILY_BUDGET ?? null, monthly: config.USER_MONTHLY_BUDGET ?? null };
}

export interface EffectiveBudget {
  daily: string | null;
  monthly: string | null;
  /** `user`: an admin set the user's own; `default`: the configured ones. */
  source: 'user' | 'default';
}

/** The budgets that apply to a user: their own, or the configured defaults. */
export async function effectiveBudget(
  db: Db,
  ownerId: string,
  defaults: BudgetDefaults,
): Promise<EffectiveBudget> {
  const own = await findUserBudget(db, ownerId);
  return own
    ? { daily: own.daily_limit, monthly: own.monthly_limit, source: 'user' }
    : { ...defaults, source: 'default' };
}

/** What is left of a limit after what is spent and reserved, never below zero; null: no limit. */
function remainingOf(limit: string | null, spent: string, reserved: string): bigint | null {
  if (limit === null) return null;
  const left = parseMoney(limit) - parseMoney(spent) - parseMoney(reserved);
  return left > 0n ? left : 0n;
}

export interface BudgetStanding {
  budget: EffectiveBudget;
  usage: BudgetUsage;
  remainingToday: bigint | null;
  remainingThisMonth: bigint | null;
}

export async function budgetStanding(
  db: Db,
  ownerId: string,
  defaults: BudgetDefaults,
): Promise<BudgetStanding> {
  const [budget, usage] = await Promise.all([
    effectiveBudget(db, ownerId, defaults),
    budgetUsage(db, ownerId),
  ]);
  return {
    budget,
    usage,
    remainingToday: remainingOf(budget.daily, usage.spentToday, usage.reserved),
    remainingThisMonth: remainingOf(budget.monthly, usage.spentThisMonth, usage.reserved),
  };
}

const view = (nanos: bigint | null): MoneyView | null => (nanos === null ? null : moneyView(nanos));

/**
 * Refuses with 402 BUDGET_EXCEEDED a job whose estimate is more than what is left of its
 * owner's daily or monthly budget, saying what is left. Exact under the owner's lock (job
 * admission, which then holds the estimate in the same transaction); without it, an early
 * check that spares the API an upload it would refuse anyway.
 */
export async function refuseOverBudget(
  db: Db,
  ownerId: string,
  estimate: bigint,
  defaults: BudgetDefaults,
  /** What a dry run has already counted against the owner, not held yet. */
  planned = 0n,
): Promise<void> {
  // What is left is never below zero, so no budget refuses an estimate of zero: nothing to read.
  if (estimate === 0n) return;
  // Without a limit nothing is refused: the owner's spend and holds (a sum over every job in
  // flight) are not read, so an owner with thousands of jobs in flight is admitted as quickly.
  const budget = await effectiveBudget(db, ownerId, defaults);
  if (budget.daily === null && budget.monthly === null) return;
  const standing = await budgetStanding(db, ownerId, defaults);
  if (planned > 0n) {
    const less = (left: bigint | null) =>
      left === null ? null : left > planned ? left - planned : 0n;
    standing.remainingToday = less(standing.remainingToday);
    standing.remainingThisMonth = less(standing.remainingThisMonth);
  }
  const over = (
    [
      ['daily', standing.remainingToday, standing.budget.daily],
      ['monthly', standing.remainingThisMonth, standing.budget.monthly],
    ] as const
  ).find(([, remaining]) => remaining !== null && estimate > remaining);
  if (!over) return;
  const [period, remaining, limit] = over;
  budgetRefusals.inc({ period });
  throw new ApiError(
    'BUDGET_EXCEEDED',
    `This job is estimated to cost ${formatMoney(estimate)} USD, but only ${formatMoney(remaining!)} USD ` +
      `of your ${period} budget of ${formatMoney(parseMoney(limit!))} USD remains ` +
      `(${formatMoney(parseMoney(standing.usage.reserved))} USD reserved by jobs in flight)`,
    {
      period,
      estimatedCost: moneyView(estimate),
      remaining: {
        daily: view(standing.remainingToday),
        monthly: view(standing.remainingThisMonth),
      },
      reserved: moneyView(parseMoney(standing.usage.reserved)),
    },
  );
}

/** A job's own estimate (its row's, decimal text), or nothing for a job accepted before costs were kept. */
export function estimateOf(row: { estimated_cost: string | null }): bigint {
  return row.estimated_cost === null ? 0n : parseMoney(row.estimated_cost);
}

/**
 * Holds a job's estimate again for a new attempt (a retry or a re-drive), as its submission
 * did: refused with 402 BUDGET_EXCEEDED when more than what is left. Call under the owner's lock
 * (`lockOwner`) in the transaction the hold is to be written in. Returns false when that attempt
 * is held already: a concurrent request for the same attempt took the hold, and its own outcome
 * keeps or drops it.
 */
export async function holdAttemptCost(
  tx: Db,
  attempt: { jobId: string; ownerId: string; attempt: number; estimate: bigint },
  defaults: BudgetDefaults,
): Promise<boolean> {
  if (await isCostHeld(tx, attempt.jobId, attempt.attempt)) return false;
  await refuseOverBudget(tx, attempt.ownerId, attempt.estimate, defaults);
  return holdCost(tx, {
    jobId: attempt.jobId,
    ownerId: attempt.ownerId,
    attempt: attempt.attempt,
    amount: formatMoney(attempt.estimate),
  });
}
