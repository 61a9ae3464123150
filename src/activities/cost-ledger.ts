// Every provider call a job makes is written to the cost ledger (src/db/costs.ts) with what it
// consumed, the price applied and its cost, under a key made of the call's durable identity: a
// call recorded again (a re-attached generation, an activity retried after its write, a charge
// deferred by a database outage and written later) is charged once.
import { Context, log } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { recordLedgerEntry, type LedgerEntry } from '../db/costs.js';
import { isDatabaseUnavailable, type Db } from '../db/database.js';
import { formatMoney } from '../costs/money.js';
import type { PriceBook, ProviderUsage } from '../costs/prices.js';
import {
  ledgerChargesDeferred,
  ledgerChargesHandedOver,
  ledgerChargesLost,
  providerCost,
  providerUsage,
} from '../metrics/metrics.js';
import type { DeferredCharge } from '../jobs/contracts.js';
import type { TokenUsage } from '../providers/types.js';

/**
 * Where a charge the database cannot take in time goes: a `recordDeferredCharge` workflow on
 * the workflows queue, which Temporal keeps until a worker writes the charge.
 */
export interface ChargeHandoff {
  client: Client;
  /** The workflows queue (`taskQueueNames(...).workflows`). */
  taskQueue: string;
}

export interface LedgerDependencies {
  db: Db;
  prices: PriceBook;
  /** Absent (a test, a tool): a deferred charge waits in this process only. */
  handoff?: ChargeHandoff | undefined;
}

/**
 * How long a charge waits for its ledger write before the call it charges goes on without it. The
 * provider has answered (and billed): failing the activity now would make its retry call, and
 * pay, again; so an unreachable database defers the charge instead (deferCharge).
 */
const ledgerWriteWaitMs = 2_000;
/** How long handing a deferred charge to Temporal may take before it waits in this process. */
const handoffWaitMs = 5_000;
const deferredRetryMs = { first: 500, most: 10_000 };

/** The workflow id of a deferred charge: its key, so a charge handed over twice is one workflow. */
export function deferredChargeWorkflowId(idempotencyKey: string): string {
  return `ledger-charge:${idempotencyKey}`;
}

/** Counts a charge the ledger took in this worker's metrics. */
function countCharge(entry: LedgerEntry): void {
  const labels = { provider: entry.provider, kind: entry.kind };
  providerCost.inc(labels, Number(entry.cost));
  providerUsage.inc({ ...labels, unit: 'input_tokens' }, entry.inputTokens);
  providerUsage.inc({ ...labels, unit: 'output_tokens' }, entry.outputTokens);
  providerUsage.inc({ ...labels, unit: 'video_seconds' }, entry.videoSeconds);
}

/** Charges one call: prices its usage and records it, counting it in the metrics once. */
export async function chargeProviderCall(
  deps: LedgerDependencies,
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
  const charge = deps.prices.charge(usage);
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
  const written = recordLedgerEntry(deps.db, entry);
  if (call.waitForLedger) {
    if (await written) countCharge(entry);
    return;
  }
  const waited = await withinMs(written, ledgerWriteWaitMs).catch((error: unknown) => {
    if (!isDatabaseUnavailable(error)) throw error;
    return 'waiting' as const;
  });
  if (waited !== 'waiting') {
    if (waited) countCharge(entry);
    return;
  }
  await deferCharge(deps, entry, written);
}

/** The promise's outcome, or 'waiting' once `ms` have passed without one. */
async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | 'waiting'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const waited = new Promise<'waiting'>((resolve) => {
    timer = setTimeout(() => resolve('waiting'), ms);
  });
  try {
    return await Promise.race([promise, waited]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A charge the database could not take in time is handed to Temporal: a `recordDeferredCharge`
 * workflow, started before the activity returns, writes it once the database is back, whichever
 * worker runs it, so a worker lost meanwhile loses nothing. The same key makes the first write
 * (still in flight) and the workflow's one charge. Only when Temporal does not take it either
 * does the charge wait in this process (`vlogflow_ledger_charges_deferred`), as a last resort.
 */
async function deferCharge(
  deps: LedgerDependencies,
  entry: LedgerEntry,
  firstWrite: Promise<boolean>,
): Promise<void> {
  log.warn('the ledger write of a charge waits for the database', {
    jobId: entry.jobId,
    idempotencyKey: entry.idempotencyKey,
  });
  if (deps.handoff) {
    try {
      await handOver(deps.handoff, entry);
      ledgerChargesHandedOver.inc();
      // The first write may land after all; it counts the charge then, the workflow's does not.
      firstWrite.then(
        (recorded) => recorded && countCharge(entry),
        () => undefined,
      );
      return;
    } catch (error) {
      log.warn('Temporal did not take the deferred charge: it waits in this worker', {
        jobId: entry.jobId,
        idempotencyKey: entry.idempotencyKey,
        error: (error as Error).message,
      });
    }
  }
  waitInProcess(deps.db, entry, firstWrite);
}

async function handOver({ client, taskQueue }: ChargeHandoff, entry: LedgerEntry): Promise<void> {
  const input: DeferredCharge = { entry };
  try {
    await client.withDeadline(Date.now() + handoffWaitMs, () =>
      client.workflow.start('recordDeferredCharge', {
        taskQueue,
        workflowId: deferredChargeWorkflowId(entry.idempotencyKey),
        args: [input],
        staticSummary: `Ledger charge of job ${entry.jobId} deferred by a database outage`,
      }),
    );
  } catch (error) {
    // Handed over already (a repeated charge of the same call): one workflow writes it.
    if (error instanceof WorkflowExecutionAlreadyStartedError) return;
    throw error;
  }
}

/**
 * Writes a charge neither the database nor Temporal could take, trying until the database
 * does, in this worker process: a worker lost before then loses it (docs/operations.md).
 */
function waitInProcess(db: Db, entry: LedgerEntry, firstWrite: Promise<boolean>): void {
  ledgerChargesDeferred.inc();
  // The activity has ended: what follows runs outside its context, so it speaks in metrics.
  const settle = (recorded: boolean) => {
    if (recorded) countCharge(entry);
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

/** The activity a `recordDeferredCharge` workflow runs, retried until the database takes it. */
export function createLedgerActivities({ db }: { db: Db }) {
  return {
    /** Writes a deferred charge under its key: one the first write made already is not charged again. */
    async writeDeferredCharge({ entry }: DeferredCharge): Promise<{ recorded: boolean }> {
      const recorded = await recordLedgerEntry(db, entry);
      if (recorded) countCharge(entry);
      log.info('deferred charge written', {
        jobId: entry.jobId,
        idempotencyKey: entry.idempotencyKey,
        recorded,
      });
      return { recorded };
    },
  };
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
