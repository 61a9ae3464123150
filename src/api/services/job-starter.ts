import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowHandleWithStartDetails,
} from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { isDatabaseUnavailable, type Db } from '../../db/database.js';
import type { JobRow } from '../../db/schema.js';
import { idempotentJobId, newJobId } from '../../jobs/ids.js';
import type { JobRecord } from '../../jobs/contracts.js';
import {
  countJobsInFlight,
  findJobIdByIdempotencyKey,
  findOwnedJob,
  insertJob,
  isIdempotencyKeyReserved,
  lockOwner,
  releaseReservation,
  reserveJob,
} from '../../db/jobs.js';
import type { JobKind } from '../../jobs/model.js';
import { workflowSummary, type JobKindDeclaration } from '../../kinds/declaration.js';
import type { Logger } from '../../logger.js';
import { isTemporalUnavailable } from '../../temporal-client.js';
import {
  JobAttemptKey,
  JobKindKey,
  JobStatusKey,
  JobTypeKey,
  UserIdKey,
} from '../../jobs/search-attributes.js';
import { ApiError } from '../errors.js';
import { dropCostHold, holdCost } from '../../db/costs.js';
import { formatMoney } from '../../costs/money.js';
import { refuseOverBudget, type BudgetDefaults } from './budgets.js';

export interface StartJobRequest<Input> {
  /** The kind's declaration: its name, workflow type and Web UI summary. */
  kind: JobKindDeclaration<string, Input> & { kind: JobKind };
  type: string;
  /** The workflow's arguments, built around the accepted job record. */
  workflowArgs: (job: JobRecord<Input>) => unknown[];
  ownerId: string;
  input: Input;
  /** Jobs of the owner with this key run one at a time, in submission order. */
  concurrencyKey: string | null;
  /** The client's Idempotency-Key header, if it sent one. */
  idempotencyKey: string | null;
  /** Hash of everything the request asked for, to recognise a replay of the key. */
  requestFingerprint: string | null;
  /** What the job is estimated to cost, in nano-units (`src/costs`): held against the owner's budgets. */
  estimatedCost: bigint;
  memo?: Record<string, unknown>;
  /**
   * Told the job's id once it is admitted, just before its workflow is started: what must be
   * found again should this process die from here on (an upload's folder) is linked to it.
   */
  beforeStart?: (jobId: string) => Promise<void>;
}

export interface StartedJob {
  row: JobRow;
  /** True when an Idempotency-Key replay returned the job made by an earlier request. */
  replayed: boolean;
}

export type StartJob = <Input>(request: StartJobRequest<Input>) => Promise<StartedJob>;

export interface JobStarterDependencies {
  db: Db;
  temporal: Client;
  /** Ask for eager starts: a worker of this process polls the workflows' queue (TemporalAccess). */
  eagerStart: boolean;
  taskQueue: string;
  logger: Logger;
  /** Most jobs one owner may have in flight; more are refused with 429. */
  maxJobsInFlight: number;
  /** The budgets of owners without their own; a job over what is left is refused with 402. */
  budgets: BudgetDefaults;
}

/** Hash of what a request asked for, to tell a replay of an Idempotency-Key from a new request. */
export function requestFingerprint(request: unknown): string {
  return createHash('sha256').update(JSON.stringify(request)).digest('hex');
}

/**
 * The job an earlier request with the same Idempotency-Key made, replayed; 422
 * IDEMPOTENCY_KEY_REUSED when that request asked for something else; null when no job has the
 * key (none yet, or one still starting: the start's admission waits for it under the lock).
 */
export async function findReplay(
  db: Db,
  request: { kind: JobKind; ownerId: string; idempotencyKey: string },
  fingerprint: string | null,
): Promise<StartedJob | null> {
  const { kind, ownerId, idempotencyKey } = request;
  const row = await findOwnedJob(db, ownerId, idempotentJobId(kind, ownerId, idempotencyKey));
  // A key names one job per owner whatever its kind, so the key may be taken by a job of
  // another kind (another id): that is another request too.
  const takenByAnotherJob =
    !row && (await findJobIdByIdempotencyKey(db, ownerId, idempotencyKey)) !== undefined;
  if (!row && !takenByAnotherJob) return null;
  if (!row || row.request_fingerprint !== fingerprint) {
    throw new ApiError(
      'IDEMPOTENCY_KEY_REUSED',
      'Idempotency-Key was already used for a different request; use a new key for a new request',
    );
  }
  return { row, replayed: true };
}

/** The owner's fairness key: their id, or its SHA-256 where the id is longer than the 64 bytes allowed. */
export function fairnessKeyOf(ownerId: string): string {
  return Buffer.byteLength(ownerId) <= 64
    ? ownerId
    : createHash('sha256').update(ownerId).digest('hex');
}

/** Seconds a client refused for having too many jobs in flight is told to wait. */
const inFlightRetryAfterSeconds = 15;

/** Longest a workflow start may take; a slower one is answered 503 TEMPORAL_UNAVAILABLE. */
const workflowStartTimeoutMs = 10_000;

/**
 * How long an admitted job's reservation holds: past any start it covers (so the cap stays
 * exact), short enough that the place of an API that died mid-start comes back soon.
 */
const reservationTtlMs = 2 * workflowStartTimeoutMs;

/**
 * Pauses before a request asks again whether an earlier one with its key has finished: the
 * first short (a replay usually waits only for the start in progress), then doubling to the
 * longest. At a steady 20 ms, requests sent together with one key (a client retrying on a
 * timeout) asked 50 times a second each, under the owner's lock, on the pool every user shares.
 */
const keyInUsePollMs = { first: 20, longest: 500 };

/**
 * Refuses with 429 TOO_MANY_JOBS_IN_FLIGHT an owner who has `maxJobsInFlight` jobs in flight.
 * Exact under the owner's lock (job admission); without it, an early check that spares the API an
 * upload it would refuse anyway.
 */
export async function refuseOwnerAtJobCap(
  db: Db,
  ownerId: string,
  maxJobsInFlight: number,
): Promise<void> {
  const inFlight = await countJobsInFlight(db, ownerId);
  if (inFlight >= maxJobsInFlight) throw tooManyJobsInFlight(inFlight, maxJobsInFlight);
}

function tooManyJobsInFlight(inFlight: number, maxJobsInFlight: number): ApiError {
  return new ApiError(
    'TOO_MANY_JOBS_IN_FLIGHT',
    `You have ${inFlight} jobs in flight, the most allowed (${maxJobsInFlight}); wait for some to finish`,
    { inFlight, limit: maxJobsInFlight },
    { 'retry-after': String(inFlightRetryAfterSeconds) },
  );
}

/**
 * What the client is told when a job could not be accepted: a refusal as it is, a database
 * that cannot be reached as a 503 to retry, anything else (a query or a workflow start the
 * servers reject) as a 500 whose cause only the log shows.
 */
function startFailure(error: unknown, log: Logger): ApiError {
  if (error instanceof ApiError) return error;
  if (isDatabaseUnavailable(error)) {
    log.error({ err: error }, 'could not record the job');
    return new ApiError(
      'DATABASE_UNAVAILABLE',
      'The job could not be recorded: the database is unavailable',
    );
  }
  log.error({ err: error }, 'could not accept the job');
  return new ApiError('INTERNAL_ERROR', 'Internal server error');
}

/**
 * Accepts a job in three steps, and holds no lock across the call to Temporal:
 *
 * 1. Admission, in one short transaction under the owner's lock: an Idempotency-Key already
 *    used returns its job (or is refused as reused); the in-flight cap and the budgets are
 *    checked; and a reservation of the job's id is written, which takes a place of the cap and
 *    the key, with a hold of its estimated cost, which takes its part of the budgets.
 * 2. The workflow is started, with no lock or transaction open: one owner's submissions start
 *    their workflows side by side.
 * 3. The row is written and the reservation dropped together: in one statement, or for a job
 *    with an Idempotency-Key in one transaction under the owner's lock again (briefly: no call
 *    out).
 *
 * Why this is as safe as holding the lock throughout:
 * - The budgets hold: every admission of an owner reads what is spent and held, and holds its
 *   own estimate, under the same lock, so concurrent submissions never overspend together.
 * - The cap is exact: under the lock, it counts jobs in flight plus reservations whose row is
 *   not written, and step 3 turns a reservation into a row atomically, so every admitted job is
 *   counted exactly once from step 1 on, whoever else is admitting.
 * - One Idempotency-Key makes one job: a request whose key is reserved by another still being
 *   started waits outside the lock and is judged again once that one has finished, as it would
 *   have queued behind the lock; when it finds the row it returns it.
 * - Nothing is orphaned: a row is still only written once its workflow exists. A failed start
 *   or row write gives the reservation back, terminates a started workflow and drops the cost
 *   hold the request wrote (never one it found: a request sent again with the key of a job whose
 *   API died mid-start finds that job's hold, and its workflow may be running under it); if the
 *   API dies between steps, the workflow's first activity writes the row itself and the
 *   reservation expires (reservationTtlMs, past the start's own deadline), counted once
 *   meanwhile, and the reconciler drops a hold whose workflow never started.
 */
export function createJobStarter({
  db,
  temporal,
  eagerStart,
  taskQueue,
  logger,
  maxJobsInFlight,
  budgets,
}: JobStarterDependencies): StartJob {
  /** Step 3: the row written and the reservation dropped; returns the row. */
  async function recordStartedJob(job: JobRecord<unknown>): Promise<JobRow | undefined> {
    // The row as written; read only when the workflow's first activity wrote it first.
    if (!job.idempotencyKey) {
      // One statement does both, without the lock: the cap's count is one statement too, and
      // sees the job once, as its reservation or as its row.
      return (
        (await insertJob(db, job, 'pending', { dropReservation: true })) ??
        findOwnedJob(db, job.ownerId, job.id)
      );
    }
    return db.transaction().execute(async (tx) => {
      // A replay of the key reads the row, the key and the reservation in several statements:
      // it must not see this swap half-way (no row yet, reservation already gone).
      await lockOwner(tx, job.ownerId);
      const written = await insertJob(tx, job, 'pending');
      await releaseReservation(tx, job.id);
      return written ?? findOwnedJob(tx, job.ownerId, job.id);
    });
  }

  /**
   * Step 1: the earlier job of the request's key, or, once the new job is reserved, whether this
   * request wrote its cost hold (not when an earlier request with its key, whose API died
   * mid-start, holds it already: that request's workflow may be running under it).
   */
  async function admit(
    job: JobRecord<unknown>,
    estimatedCost: bigint,
  ): Promise<StartedJob | { heldCost: boolean }> {
    let pauseMs = keyInUsePollMs.first;
    for (;;) {
      const outcome = await db.transaction().execute(async (tx) => {
        await lockOwner(tx, job.ownerId);
        if (job.idempotencyKey) {
          const { kind, ownerId, idempotencyKey } = job;
          const earlier = await findReplay(
            tx,
            { kind, ownerId, idempotencyKey },
            job.requestFingerprint,
          );
          if (earlier) return earlier;
          if (await isIdempotencyKeyReserved(tx, job.ownerId, job.idempotencyKey)) return 'wait';
        }
        const hold = { amount: formatMoney(estimatedCost), attempt: 1 };
        // No budget refuses a zero estimate (refuseOverBudget reads nothing for it), so its
        // hold goes in the reservation's statement: one round trip less.
        const holdWithReservation = estimatedCost === 0n;
        const { reserved, inFlight, held } = await reserveJob(tx, {
          jobId: job.id,
          ownerId: job.ownerId,
          idempotencyKey: job.idempotencyKey,
          ttlMs: reservationTtlMs,
          maxInFlight: maxJobsInFlight,
          ...(holdWithReservation && { hold }),
        });
        if (!reserved) throw tooManyJobsInFlight(inFlight, maxJobsInFlight);
        if (holdWithReservation) return { heldCost: held === true };
        // Refused over budget, the transaction rolls the reservation back with the rest.
        await refuseOverBudget(tx, job.ownerId, estimatedCost, budgets);
        return { heldCost: await holdCost(tx, { jobId: job.id, ownerId: job.ownerId, ...hold }) };
      });
      if (outcome !== 'wait') return outcome;
      await delay(pauseMs);
      pauseMs = Math.min(2 * pauseMs, keyInUsePollMs.longest);
    }
  }

  return async (request) => {
    const { ownerId, idempotencyKey } = request;
    const { kind } = request.kind;
    const job: JobRecord<(typeof request)['input']> = {
      id: idempotencyKey ? idempotentJobId(kind, ownerId, idempotencyKey) : newJobId(kind),
      kind,
      type: request.type,
      ownerId,
      input: request.input,
      idempotencyKey,
      requestFingerprint: request.requestFingerprint,
      createdAt: new Date().toISOString(),
      concurrencyKey: request.concurrencyKey,
      estimatedCost: formatMoney(request.estimatedCost),
      projectionPatchesApplied: true,
    };
    const log = logger.child({ jobId: job.id });
    let reserved = false;
    let heldCost = false;
    let handle: WorkflowHandleWithStartDetails | undefined;
    try {
      const admitted = await admit(job, request.estimatedCost);
      if ('row' in admitted) return admitted;
      reserved = true;
      heldCost = admitted.heldCost;
      await request.beforeStart?.(job.id);
      handle = await startWorkflow(request, job, log);
      const row = await recordStartedJob(job);
      if (!row) throw new Error('job row missing right after insert');
      log.info(
        {
          kind: job.kind,
          type: job.type,
          runId: handle.firstExecutionRunId,
          eagerlyStarted: handle.eagerlyStarted,
        },
        'job accepted',
      );
      return { row, replayed: false };
    } catch (error) {
      let workflowLeftRunning = false;
      if (handle) {
        await handle
          .terminate('the API could not record the job')
          .catch((terminateError: unknown) => {
            workflowLeftRunning = true;
            log.error(
              { err: terminateError },
              'could not terminate the workflow; it will record the job itself',
            );
          });
      }
      if (reserved) {
        await releaseReservation(db, job.id).catch((releaseError: unknown) => {
          log.warn({ err: releaseError }, 'reservation not released; it expires by itself');
        });
        // Unless the workflow outlived the terminate (it then writes the row itself, and its
        // estimate stays held until it ends), nothing ran: the estimate goes back. Only a hold
        // this request wrote: one it found is an earlier request's, whose workflow may run.
        if (heldCost && !workflowLeftRunning) {
          await dropCostHold(db, job.id, 1).catch((dropError: unknown) => {
            log.error({ err: dropError }, 'cost hold of a job never started not dropped');
          });
        }
      }
      throw startFailure(error, log);
    }
  };

  async function startWorkflow<Input>(
    request: StartJobRequest<Input>,
    job: JobRecord<Input>,
    log: Logger,
  ) {
    try {
      const deadline = Date.now() + workflowStartTimeoutMs;
      return await temporal.withDeadline(deadline, () =>
        temporal.workflow.start(request.kind.workflowType, {
          taskQueue,
          workflowId: job.id,
          // Only an id with no row reaches here (admission replays a job that has one). A run of
          // it that closed unsuccessfully is a start that failed (the API terminated it when its
          // row could not be written; its first activity writes the row before any work): the
          // client, told to send the request again, gets its job. A run still open is the start
          // of an API that died mid-start, and is answered IDEMPOTENCY_KEY_IN_USE below.
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
          requestEagerStart: eagerStart,
          args: request.workflowArgs(job) as never,
          typedSearchAttributes: [
            { key: JobKindKey, value: job.kind },
            { key: JobTypeKey, value: job.type },
            { key: JobStatusKey, value: 'pending' },
            { key: UserIdKey, value: job.ownerId },
            { key: JobAttemptKey, value: 1 },
          ],
          staticSummary: workflowSummary(request.kind, { type: job.type, input: job.input }),
          // Fairness: the server hands out each user's tasks in turn, so one user's backlog
          // does not starve another's job. Activities inherit the key (theirs is left unset).
          priority: { fairnessKey: fairnessKeyOf(job.ownerId) },
          ...(request.memo ? { memo: request.memo } : {}),
        }),
      );
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        // The workflow exists but its row does not: an earlier request with this key started
        // it and its API died before the row was written; the workflow writes it shortly.
        throw new ApiError(
          'IDEMPOTENCY_KEY_IN_USE',
          'A request with this Idempotency-Key is still being processed; repeat it in a moment',
          undefined,
          { 'retry-after': '1' },
        );
      }
      if (!isTemporalUnavailable(error)) throw error;
      log.error({ err: error }, 'could not start the job workflow');
      throw new ApiError(
        'TEMPORAL_UNAVAILABLE',
        'The job could not be started: Temporal is unavailable',
      );
    }
  }
}
