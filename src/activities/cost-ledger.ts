// Every provider call a job makes is written to the cost ledger (src/db/costs.ts) with what it
// consumed, the price applied and its cost, under a key made of the call's durable identity: a
// call recorded again (a re-attached generation, an activity retried after its write, a charge
// deferred by a database outage and written later) is charged once. A model's answer is kept
// with its charge until its job attempt ends, so a retried activity reuses it instead of paying
// for it again (chargedModelCall).
import { Context, log } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { recordLedgerEntry, voidEndOfJobCharge, type LedgerEntry } from '../db/costs.js';
import { isDatabaseUnavailable, type Db } from '../db/database.js';
import { findModelAnswer, keepModelAnswer, type KeptModelAnswer } from '../db/model-answers.js';
import { formatMoney } from '../costs/money.js';
import type { PriceBook, ProviderUsage } from '../costs/prices.js';
import {
  ledgerChargesDeferred,
  ledgerChargesHandedOver,
  ledgerChargesLost,
  providerCost,
  providerCostVoided,
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

/**
 * Takes back a charge made at its job's end that the provider did not bill after all
 * (voidEndOfJobCharge), counting it in the metrics once; returns whether it took one back.
 */
export async function takeBackEndOfJobCharge(
  db: Db,
  charge: { idempotencyKey: string; reason: string },
): Promise<boolean> {
  const voided = await voidEndOfJobCharge(db, charge);
  if (!voided) return false;
  providerCostVoided.inc({ provider: voided.provider, kind: voided.kind }, Number(voided.cost));
  return true;
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

/** One model call of a job, as chargedModelCall makes it. */
export interface ModelCall {
  jobId: string;
  kind: LedgerEntry['kind'];
  provider: string;
  model: string;
  /** Which answer of the activity this is (1, then each repair: see askUntilValid). */
  round: number;
  /** Receives an answer kept by an earlier attempt, used instead of the call's own output. */
  onReused?: (answer: string) => void;
}

/**
 * Runs one model call of the current job attempt and charges it: with the tokens the provider
 * reported (a generator estimates them for a stream cut off before its report), or none when it
 * reported nothing (a local model). A call refused before its answer began is not charged
 * (nothing was billed). The charge's key is the
 * call's identity in the workflow's history (run, activity, activity attempt, round), never
 * random.
 *
 * A finished answer is kept (src/db/model-answers.ts) before it is charged, under the call's
 * identity within the job attempt: the run (one a job attempt: a retry continues as new), the
 * activity's type and the round, but not the activity's id or attempt. So an activity that is
 * retried after the answer, because its result never reached Temporal (the server was down,
 * the worker was lost), or whose throttled call the workflow asks again, gets the same answer
 * without asking the provider: never paying twice for one call of one job attempt. The kept
 * answer's charge is written again under its own key (charged once; written now if the lost
 * attempt did not). A call that failed or was cut off keeps nothing, and a retry of the job (a
 * new attempt) asks again.
 */
export async function chargedModelCall(
  deps: LedgerDependencies,
  call: ModelCall,
  run: (onUsage: (usage: TokenUsage) => void) => Promise<string>,
): Promise<string> {
  const { info } = Context.current();
  const runId = info.workflowExecution?.runId;
  const idempotencyKey = [
    call.jobId,
    call.kind,
    runId ?? 'standalone',
    info.activityId,
    info.attempt,
    call.round,
  ].join(':');
  // A standalone activity (no workflow) has no job attempt to keep an answer for.
  const callKey =
    runId === undefined
      ? null
      : [call.jobId, call.kind, runId, info.activityType, call.round].join(':');
  const kept = callKey === null ? undefined : await findModelAnswer(deps.db, callKey);
  if (kept) return reuseAnswer(deps, call, kept);
  let usage: TokenUsage | null = null;
  let answer: string | null = null;
  try {
    answer = await run((reported) => {
      usage = reported;
    });
    return answer;
  } finally {
    const billed: TokenUsage | null =
      usage ?? (answer !== null ? { inputTokens: 0, outputTokens: 0 } : null);
    if (billed) {
      if (answer !== null && callKey !== null) {
        await keepAnswer(deps.db, {
          callKey,
          jobId: call.jobId,
          ledgerKey: idempotencyKey,
          provider: call.provider,
          model: call.model,
          inputTokens: billed.inputTokens,
          outputTokens: billed.outputTokens,
          answer,
        });
      }
      await chargeProviderCall(deps, {
        idempotencyKey,
        jobId: call.jobId,
        kind: call.kind,
        usage: { provider: call.provider, model: call.model, ...billed },
      });
    }
  }
}

/**
 * Keeps a charged answer for a retry of its activity, waiting for the database no longer than
 * for a charge: the answer is in hand, and failing now would make the retry pay again, so a
 * write that fails or is late only leaves the retry asking again (as before answers were kept).
 * A late write that lands after the job ended keeps nothing.
 */
async function keepAnswer(db: Db, answer: KeptModelAnswer): Promise<void> {
  const written = keepModelAnswer(db, answer);
  written.catch(() => undefined);
  const outcome = await withinMs(written, ledgerWriteWaitMs).catch((error: unknown) =>
    error instanceof Error ? error.message : String(error),
  );
  if (typeof outcome === 'boolean') return;
  log.warn('the model answer was not kept: a retry of this activity would ask again', {
    jobId: answer.jobId,
    callKey: answer.callKey,
    error: outcome === 'waiting' ? 'the database did not answer in time' : outcome,
  });
}

/** An answer kept by an earlier attempt of the activity, charged (once) under its own key. */
async function reuseAnswer(
  deps: LedgerDependencies,
  call: ModelCall,
  kept: KeptModelAnswer,
): Promise<string> {
  log.info('reusing the model answer an earlier attempt of this activity was charged for', {
    jobId: call.jobId,
    callKey: kept.callKey,
    round: call.round,
  });
  call.onReused?.(kept.answer);
  await chargeProviderCall(deps, {
    idempotencyKey: kept.ledgerKey,
    jobId: call.jobId,
    kind: call.kind,
    usage: {
      provider: kept.provider,
      model: kept.model,
      inputTokens: kept.inputTokens,
      outputTokens: kept.outputTokens,
    },
  });
  return kept.answer;
}
