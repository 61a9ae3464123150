// Every provider call a job makes is written to the cost ledger (src/db/costs.ts) with what it
// consumed, the price applied and its cost, under a key made of the call's durable identity: a
// call recorded again (a re-attached generation, an activity retried after its write) is
// charged once.
import { Context, log } from '@temporalio/activity';
import { recordLedgerEntry, type LedgerEntry } from '../db/costs.js';
import { isDatabaseUnavailable, type Db } from '../db/database.js';
import { formatMoney } from '../costs/money.js';
import type { PriceBook, ProviderUsage } from '../costs/prices.js';
import {
  ledgerChargesDeferred,
  ledgerChargesLost,
  providerCost,
  providerUsage,
} from '../metrics/metrics.js';
import type { TokenUsage } from '../providers/types.js';

export interface LedgerDependencies {
  db: Db;
  prices: PriceBook;
}

/**
 * How long a charge waits for its ledger write before the call it charges goes on without it. The
 * provider has answered (and billed): failing the activity now would make its retry call, and
 * pay, again; so an unreachable database defers the charge instead (deferCharge).
 */
const ledgerWriteWaitMs = 2_000;
const deferredRetryMs = { first: 500, most: 10_000 };

/** Charges one call: prices its usage and records it, counting it in the metrics once. */
export async function chargeProviderCall(
  { db, prices }: LedgerDependencies,
  call: {
    idempotencyKey: string;
    jobId: string;
    kind: LedgerEntry['kind'];
    usage: ProviderUsage;
    /** Why the call is charged when not when the provider reported it done, kept with its prices. */
    note?: string;
    /**
     * Wait for the database however long it takes, never deferring: for a caller that writes to
     * it next anyway (the projection, retried by Temporal until it can), whose charge must land
     * before the state it projects.
     */
    waitForLedger?: boolean;
  },
): Promise<void> {
  const { usage } = call;
  const charge = prices.charge(usage);
  const entry: LedgerEntry = {
    idempotencyKey: call.idempotencyKey,
    jobId: call.jobId,
    kind: call.kind,
    provider: usage.provider,
    model: usage.model,
    inputTokens: usage.inputTokens ?? 0,
    outputTokens: usage.outputTokens ?? 0,
    videoSeconds: usage.videoSeconds ?? 0,
    priceVersion: charge.price.version,
    prices: call.note ? { ...charge.price, note: call.note } : charge.price,
    cost: formatMoney(charge.cost),
    currency: charge.currency,
  };
  const count = (recorded: boolean) => {
    if (!recorded) return;
    const labels = { provider: usage.provider, kind: call.kind };
    providerCost.inc(labels, Number(charge.cost) / 1e9);
    providerUsage.inc({ ...labels, unit: 'input_tokens' }, usage.inputTokens ?? 0);
    providerUsage.inc({ ...labels, unit: 'output_tokens' }, usage.outputTokens ?? 0);
    providerUsage.inc({ ...labels, unit: 'video_seconds' }, usage.videoSeconds ?? 0);
  };
  const written = recordLedgerEntry(db, entry);
  if (call.waitForLedger) return count(await written);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const waited = new Promise<'waiting'>((resolve) => {
    timer = setTimeout(() => resolve('waiting'), ledgerWriteWaitMs);
  });
  try {
    const outcome = await Promise.race([written, waited]);
    if (outcome !== 'waiting') return count(outcome);
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
  } finally {
    clearTimeout(timer);
  }
  deferCharge(db, entry, written, count);
}

/**
 * Writes a charge the database could not take in time, trying until it does, in this worker
 * process: the same key makes the first write and every retry one charge. A worker lost before
 * the database is back loses the charge (docs/operations.md); the gauge shows how many wait.
 */
function deferCharge(
  db: Db,
  entry: LedgerEntry,
  firstWrite: Promise<boolean>,
  count: (recorded: boolean) => void,
): void {
  ledgerChargesDeferred.inc();
  log.warn('the ledger write of a charge waits for the database', {
    jobId: entry.jobId,
    idempotencyKey: entry.idempotencyKey,
  });
  // The activity has ended: what follows runs outside its context, so it speaks in metrics.
  const settle = (recorded: boolean) => {
    count(recorded);
    ledgerChargesDeferred.dec();
  };
  let delay = deferredRetryMs.first;
  const retry = () => {
    setTimeout(() => {
      recordLedgerEntry(db, entry).then(settle, onError);
    }, delay).unref();
    delay = Math.min(delay * 2, deferredRetryMs.most);
  };
  const onError = (error: unknown) => {
    if (!isDatabaseUnavailable(error)) {
      ledgerChargesDeferred.dec();
      ledgerChargesLost.inc();
      return;
    }
    retry();
  };
  firstWrite.then(settle, onError);
}

/**
 * Runs one model call of the current activity and charges it: with the tokens the provider
 * reported, or none when it reported nothing (a local model). A call that failed before the
 * provider reported any usage is not charged (nothing was billed). The key is the call's
 * identity in the workflow's history (run, activity, activity attempt, round), never random.
 */
export async function chargedModelCall<T>(
  deps: LedgerDependencies,
  call: {
    jobId: string;
    kind: LedgerEntry['kind'];
    provider: string;
    model: string;
    round: number;
  },
  run: (onUsage: (usage: TokenUsage) => void) => Promise<T>,
): Promise<T> {
  const { info } = Context.current();
  const idempotencyKey = [
    call.jobId,
    call.kind,
    info.workflowExecution?.runId ?? 'standalone',
    info.activityId,
    info.attempt,
    call.round,
  ].join(':');
  let usage: TokenUsage | null = null;
  let answered = false;
  try {
    const answer = await run((reported) => {
      usage = reported;
    });
    answered = true;
    return answer;
  } finally {
    const billed: TokenUsage | null =
      usage ?? (answered ? { inputTokens: 0, outputTokens: 0 } : null);
    if (billed) {
      await chargeProviderCall(deps, {
        idempotencyKey,
        jobId: call.jobId,
        kind: call.kind,
        usage: { provider: call.provider, model: call.model, ...billed },
      });
    }
  }
}
