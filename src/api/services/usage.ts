import { reservedByOwner, spendByDay, type SpendRow } from '../../db/costs.js';
import type { Db } from '../../db/database.js';
import { parseMoney } from '../../costs/money.js';
import { moneyView } from '../../costs/prices.js';
import { ApiError, validationFailed } from '../errors.js';
import { maxUsageDays } from '../schemas/usage.js';
import { budgetStanding, type BudgetDefaults } from './budgets.js';

const dayMs = 86_400_000;
const dayOf = (date: Date) => date.toISOString().slice(0, 10);

/**
 * Refuses a caller without the admin claim who asks for another user's usage (`userId`, as
 * given: the route calls it before the query is validated, so its rules stay the operators').
 */
export function refuseOthersUsage(
  caller: { userId: string; isAdmin: boolean },
  userId: unknown,
): void {
  // Only a user named: an empty or malformed one is the schema's to refuse, as for anyone.
  if (typeof userId === 'string' && userId !== '' && userId !== caller.userId && !caller.isAdmin) {
    throw new ApiError(
      'ADMIN_REQUIRED',
      "userId: another user's usage is for operators: the token lacks the admin claim",
    );
  }
}

/** Spending by day and kind of call, holds and budgets: a user's own, or every user's for an admin. */
export function createUsageService({ db, budgets }: { db: Db; budgets: BudgetDefaults }) {
  async function userUsage(userId: string, rows: SpendRow[], reserved: string | undefined) {
    const days = new Map<string, SpendRow[]>();
    for (const row of rows) days.set(row.day, [...(days.get(row.day) ?? []), row]);
    const sum = (of: SpendRow[]) => of.reduce((total, row) => total + parseMoney(row.cost), 0n);
    const standing = await budgetStanding(db, userId, budgets);
    const limit = (value: string | null) => (value === null ? null : moneyView(parseMoney(value)));
    const remaining = (value: bigint | null) => (value === null ? null : moneyView(value));
    return {
      userId,
      total: moneyView(sum(rows)),
      reserved: moneyView(parseMoney(reserved ?? '0')),
      days: [...days].map(([day, ofDay]) => ({
        day,
        total: moneyView(sum(ofDay)),
        byKind: ofDay.map((row) => ({
          kind: row.kind,
          provider: row.provider,
          calls: row.calls,
          cost: moneyView(parseMoney(row.cost)),
        })),
      })),
      budget: {
        daily: limit(standing.budget.daily),
        monthly: limit(standing.budget.monthly),
        source: standing.budget.source,
        spentToday: moneyView(parseMoney(standing.usage.spentToday)),
        spentThisMonth: moneyView(parseMoney(standing.usage.spentThisMonth)),
        remainingToday: remaining(standing.remainingToday),
        remainingThisMonth: remaining(standing.remainingThisMonth),
      },
    };
  }

  return {
    /**
     * The usage the caller may see: their own; an admin's choice of one user, or every user with
     * spending in the range or holds now. Days are UTC; `to` is inclusive.
     */
    async usage(
      caller: { userId: string; isAdmin: boolean },
      query: { from?: string | undefined; to?: string | undefined; userId?: string | undefined },
    ) {
      refuseOthersUsage(caller, query.userId);
      const now = new Date();
      const from = query.from ?? `${dayOf(now).slice(0, 7)}-01`;
      const to = query.to ?? dayOf(now);
      const fromDate = new Date(`${from}T00:00:00Z`);
      const endDate = new Date(Date.parse(`${to}T00:00:00Z`) + dayMs);
      const days = (endDate.getTime() - fromDate.getTime()) / dayMs;
      // The schema compares the two when both are given; a default takes the other's place here.
      if (to < from) {
        throw validationFailed([
          query.to === undefined
            ? {
                field: 'querystring.from',
                message: `must not be after to, which is today (${to}) when not given`,
              }
            : {
                field: 'querystring.to',
                message: `must not be before from, which is the first day of this month (${from}) when not given`,
              },
        ]);
      }
      if (days > maxUsageDays) {
        throw validationFailed([
          {
            field: query.from === undefined ? 'querystring.to' : 'querystring.from',
            message: `the range from ${from} to ${to} covers ${days} days, more than ${maxUsageDays}`,
          },
        ]);
      }
      const ownerId = caller.isAdmin ? (query.userId ?? null) : caller.userId;
      const [rows, holds] = await Promise.all([
        spendByDay(db, { ownerId, from, to }),
        reservedByOwner(db, ownerId),
      ]);
      const reserved = new Map(holds.map((hold) => [hold.ownerId, hold.reserved]));
      const userIds =
        ownerId === null
          ? [...new Set([...rows.map((row) => row.ownerId), ...reserved.keys()])].sort()
          : [ownerId];
      const users = [];
      for (const userId of userIds) {
        users.push(
          await userUsage(
            userId,
            rows.filter((row) => row.ownerId === userId),
            reserved.get(userId),
          ),
        );
      }
      return { from, to, users };
    },
  };
}

export type UsageService = ReturnType<typeof createUsageService>;
